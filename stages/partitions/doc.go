// Package partitions implements the partitions stage kind: it reads a
// dataset laid out like DeepFashion's "Category and Attribute Prediction"
// benchmark, or a plain CSV, and stores its attributes, categories and one
// samples table per partition (train, val, test).
//
// # Outputs
//
//   - attributes: index, name, type, type_name, in label order. With
//     attr_type set, only that type's attributes, renumbered from 0, and
//     every labels vector is cut down to the same columns.
//   - categories: id, name, body_type; an empty table when the dataset
//     has none.
//   - train, val, test: samples tables (artifacts.Samples) whose image
//     paths are relative to the absolute data root recorded in the table.
//     Labels are 1 present, -1 absent, 0 unknown. Rows keep the order of
//     the attribute file (coarse), the S.txt files (fine) or the CSV.
//
// # Coarse layout (layout: coarse)
//
// Anno/ (or Anno_coarse/ when Anno/ has no list_attr_img.txt) holds
// list_attr_cloth.txt and list_attr_img.txt, and optionally
// list_category_cloth.txt, list_category_img.txt, list_bbox.txt and
// list_landmarks.txt; Eval/list_eval_partition.txt assigns partitions.
// Every list_* file starts with a row count and a header line (whose
// first token is attribute_name, category_name or image_name). Names and
// paths may contain spaces and non-ASCII characters: the values are the
// last tokens of a row and the rest is the name or path. Tokens are
// separated by any mix of spaces and tabs; CRLF line ends, blank lines and
// a UTF-8 byte order mark are accepted. Labels may be written 1, -1, 0,
// +1, 1.0 or -1.0. Attribute types must be 1..5 (texture, fabric, shape,
// part, style). Landmarks rows hold a clothes type, a variation type and
// 4, 6 or 8 (visibility, x, y) triples, visibility 0 (visible), 1
// (occluded) or 2 (truncated), positions 0 to 2^20; they are stored as
// x, y pairs, a truncated landmark as 0 0. Images missing from
// list_category_img.txt get category 0, from list_bbox.txt no box.
// list_category_img.txt without list_category_cloth.txt is an error that
// names the missing file.
//
// # Fine layout (layout: fine)
//
// Anno_fine/ holds list_attr_cloth.txt (types are the fine group ids:
// 1 texture, 2 sleeve, 3 length, 4 neckline, 5 fabric, 6 fit; 7 style is
// stitch's own, which the synthetic dataset uses, and a larger id is
// named "group N") and, for S
// in train, val, test, the row-aligned files S.txt (one image path per
// line), S_attr.txt (one 0/1 value per attribute; 0 means absent and is
// stored as -1), and optionally S_bbox.txt (x1 y1 x2 y2), S_landmarks.txt
// (x y pairs, 0 0 for a missing one) and S_cate.txt (a category id, with
// list_category_cloth.txt next to them: an S_cate.txt without it is an
// error). These files have no count or header line.
//
// # CSV layout (layout: csv)
//
// For datasets that are not laid out like DeepFashion. csv.file (default
// labels.csv, relative to root or absolute) is an RFC 4180 CSV file with a header row:
//
//		image,partition,category,x1,y1,x2,y2,striped,floral,long sleeves
//		img/0001.jpg,train,3,10,12,200,240,1,-1,
//		img/0002.jpg,val,,,,,,-1,1,1
//
//	  - image (required): the path relative to root.
//	  - partition (required): train, val or test.
//	  - category (optional): a 1-based category id, at most 10,000, or
//	    nothing; the categories output then lists ids 1..max named
//	    "category N".
//	  - x1, y1, x2, y2 (optional, all four or none): a bounding box in
//	    pixels; empty cells mean no box for that row.
//	  - wide form: every other column is one attribute, named by its header,
//	    holding 1, -1, 0 or nothing (nothing and 0 are unknown).
//	  - list form (csv.labels_column: NAME): the column NAME holds the
//	    names of the present attributes separated by csv.list_separator
//	    (default ";"); every other attribute is absent, none is unknown.
//	    No other column is allowed.
//
// csv.attributes (optional in the wide form, required in the list form)
// names a second CSV file with columns name, type and optionally
// type_name; type_name defaults to DeepFashion's names for types 1..5.
// In the wide form it must name exactly the attribute columns and gives
// their types (the column order stays the label order); in the list form
// its row order is the label order. Without it every attribute has type
// 0, so attr_type cannot be used.
//
// # Errors
//
// Every parse error names the file (relative to root) and the line: a
// count line that disagrees with the rows, a missing header, a row with a
// value too few or too many (a path whose own last token is a number is
// read as a value too many), a type outside 1..5, an image listed twice,
// an image of the partition file missing from the attribute file or the
// reverse, an unknown partition, a category id outside the category
// table (or, in a CSV, above 10,000), a CSV file that is empty or blank
// (no header row), a labels CSV with no row after its header, a CSV path
// that names a folder, a blank line between the rows of a fine-layout
// file (its rows match the image list by position; blank lines at the end
// are fine). check_images: true stats every listed image and
// fails naming the first missing ones.
//
// Tolerated, counted and logged as one warning naming the first case: an
// attribute name listed twice in list_attr_cloth.txt (the columns stay
// apart by position; in the CSV layout's attributes file it is an error,
// as its names are matched to columns).
//
// # Cache key
//
// The run key covers the annotation files and, with check_images: true,
// the image folder (img/, or the CSV dataset's root), by content. That
// folder's fingerprint is then also written into the samples tables
// (schema metadata stitch.images_fingerprint), so an image edited in
// place under the same name gives new samples ids and reruns images,
// train, predict and everything after them. Without check_images the
// samples hold paths only and an edited image reruns nothing.
//
// # Speed
//
// The list files are read with a hand-written byte scanner over a 4 MB
// buffer; labels are parsed from the right of each row without allocating
// and written straight into label buffers sized from the partition file.
// BenchmarkParseCoarseFull measures a full-size list_attr_img.txt
// (289,222 images x 1000 attributes).
package partitions
