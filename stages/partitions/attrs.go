package partitions

import (
	"errors"
	"fmt"
	"io"

	"stitch/artifacts"
)

// coarseTypeNames are DeepFashion's attribute types in the coarse layout.
var coarseTypeNames = map[int]string{1: "texture", 2: "fabric", 3: "shape", 4: "part", 5: "style"}

// fineTypeNames are the group ids of DeepFashion's Anno_fine layout; 7
// (style) is stitch's own, used by the synthetic dataset.
var fineTypeNames = map[int]string{
	1: "texture", 2: "sleeve", 3: "length", 4: "neckline", 5: "fabric", 6: "fit", 7: "style",
}

// readAttrCloth reads list_attr_cloth.txt: a count, a header, then one
// attribute per row whose last token is its type (names contain spaces).
// In the coarse layout the type must be 1..5; in the fine layout it is a
// group id (1..7 named, larger ids accepted as "group N"). A name listed
// again is a counted tolerance: its columns stay apart by index, and the
// returned Tolerated says how many and where the first one is.
func readAttrCloth(path, name string, coarse bool) ([]artifacts.Attribute, *Tolerated, error) {
	var attrs []artifacts.Attribute
	seenAt := map[string]int{}
	var dups *Tolerated
	err := readList(path, name, "attribute_name", func(lr *lineReader, line []byte) error {
		tok, rest := lastToken(line)
		typ, ok := parseInt(tok)
		if !ok || len(rest) == 0 {
			return lr.errorf("want an attribute name and a type, got %q", clip(line))
		}
		typeName, err := attrTypeName(int(typ), coarse)
		if err != nil {
			return lr.errorf("attribute %q: %v", rest, err)
		}
		if first, ok := seenAt[string(rest)]; ok {
			if dups == nil {
				dups = &Tolerated{What: "attribute names listed more than once; they stay apart by column",
					First: fmt.Sprintf("%s:%d and %d: %q", name, first, lr.line, rest)}
			}
			dups.Count++
		} else {
			seenAt[string(rest)] = lr.line
		}
		attrs = append(attrs, artifacts.Attribute{
			Index: len(attrs), Name: string(rest), Type: int(typ), TypeName: typeName,
		})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(attrs) == 0 {
		return nil, nil, fmt.Errorf("parse %s: no attributes", name)
	}
	return attrs, dups, nil
}

func attrTypeName(typ int, coarse bool) (string, error) {
	if coarse {
		if n, ok := coarseTypeNames[typ]; ok {
			return n, nil
		}
		return "", fmt.Errorf("type %d outside 1..5 (texture, fabric, shape, part, style)", typ)
	}
	if n, ok := fineTypeNames[typ]; ok {
		return n, nil
	}
	if typ < 1 {
		return "", fmt.Errorf("group id %d, want 1 or more", typ)
	}
	return fmt.Sprintf("group %d", typ), nil
}

// selectType restricts attrs to one type (0 keeps all). keep[j] is the
// output column of input column j, or -1; kept attributes are renumbered
// so names, types and label columns stay aligned.
func selectType(attrs []artifacts.Attribute, attrType int) (kept []artifacts.Attribute, keep []int, err error) {
	keep = make([]int, len(attrs))
	for j, a := range attrs {
		keep[j] = -1
		if attrType == 0 || a.Type == attrType {
			keep[j] = len(kept)
			a.Index = len(kept)
			kept = append(kept, a)
		}
	}
	if len(kept) == 0 {
		return nil, nil, fmt.Errorf("attr_type %d: no attribute has this type", attrType)
	}
	return kept, keep, nil
}

// readCategoryCloth reads list_category_cloth.txt: a count, a header, then
// a category name and its body type (1 upper, 2 lower, 3 full) per row;
// ids are 1-based row numbers.
func readCategoryCloth(path, name string) ([]artifacts.Category, error) {
	var cats []artifacts.Category
	err := readList(path, name, "category_name", func(lr *lineReader, line []byte) error {
		tok, rest := lastToken(line)
		body, ok := parseInt(tok)
		if !ok || len(rest) == 0 {
			return lr.errorf("want a category name and a body type, got %q", clip(line))
		}
		if body < 1 || body > 3 {
			return lr.errorf("category %q: body type %d outside 1..3", rest, body)
		}
		cats = append(cats, artifacts.Category{ID: len(cats) + 1, Name: string(rest), BodyType: int(body)})
		return nil
	})
	return cats, err
}

// readList reads a DeepFashion list_* file: a count line, a header whose
// first token is header, then one row per call of fn; the count is checked
// against the rows at the end.
func readList(path, name, header string, fn func(lr *lineReader, line []byte) error) error {
	lr, err := openLines(path, name)
	if err != nil {
		return err
	}
	defer lr.Close()
	count, err := lr.readHeader(header)
	if err != nil {
		return err
	}
	rows := 0
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := fn(lr, line); err != nil {
			return err
		}
		rows++
	}
	return lr.checkCount(count, rows)
}
