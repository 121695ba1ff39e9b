// Package images implements the images stage kind, the notebook's "copy
// partitions": it decodes the image files a samples table names, crops
// each to its bounding box, resizes it and stores the pixels in an images
// table, so that training and prediction read decoded bytes instead of
// JPEG files.
//
// # Input and outputs
//
// Input samples is a samples table (artifacts.Samples): a data root,
// image paths relative to it, optional boxes. An images table is refused,
// since its boxes no longer match its pixels.
//
//   - images: an images table, the input's rows in input order (less the
//     skipped ones) with every column kept and Pixels set: Height x Width
//     x 3 RGB bytes per row, Height and Width from image_size. It is read
//     with artifacts.Store.GetSamples and accepted by predict and train
//     like any images table. Its metadata (Samples.Crop) records the crop
//     and margin, which train copies into the model for predict.
//   - bad_images: a table (kind table, stitch.table bad-images) with
//     columns image, partition, reason, one row per skipped image in input
//     order; written on every run, empty when nothing was skipped. Reason
//     is the decoding error with the file's path relative to the root.
//
// # Parameters
//
//   - image_size (default 224): the output size, one number for a square
//     or [height, width]; 224 and [224, 224] are the same parameter. Each
//     side 1 to 1024.
//   - margin (default 0.1): the box is grown by this fraction of its width
//     and height on each side, clipped to the image, before cropping. A
//     row without a box keeps the whole image; a box empty after clipping
//     also keeps the whole image (pixels.CropBox).
//   - on_bad_image (default error): error fails the stage at the first bad
//     image in input order, with an error naming the file and the row;
//     skip leaves bad images out, logs one debug line per image and one
//     warning with the count, and lists them in bad_images.
//   - workers (default 0, one per core; at most 1024): images decoded at once. The
//     output does not depend on it, and the run key leaves it out.
//
// Images are decoded by pixels.Load, as every other stage decodes them:
// JPEG and PNG, greyscale, CMYK, alpha composited on white, the EXIF
// orientation applied before the box is used, and a declared size above
// pixels.MaxPixels refused before decoding. A bad image is one Load
// refuses: a missing or unreadable file, a zero-byte file, a truncated or
// corrupt one, one too large. The crop is followed by pixels.Fit, which
// stretches to the exact size as Keras' target_size does.
//
// # Memory
//
// The table is streamed into the store (artifacts.Store.WriteSamples):
// rows are decoded in parallel, written in input order, and flushed as
// record batches of at most 256 rows and 32 MiB of pixels (BatchRows).
// Besides the input samples table, a run holds one batch being built, at
// most 4 decoded rows per worker waiting to be written, and one full-size
// decoded image per worker, whatever the partition's size.
//
// # Cache key
//
// The kind declares no external files (it is not a pipeline.ExternalReader):
// which files it reads depends on the samples table, which Externals, given
// only the parameters, cannot see. The run key covers the samples artifact
// (paths, boxes, labels, root), the parameters and the kind's version.
// When partitions ran with check_images: true, the samples also carry the
// image folder's content fingerprint, so edited images give a new key and
// this stage runs again. Without it, images edited in place under the
// same names leave the key unchanged and the output cached: rerun with
// `stitch run --force STAGE`.
package images
