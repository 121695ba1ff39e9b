package train

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"stitch/artifacts"
)

// readPosWeights reads the pos_weight column of a weights table (from
// resample), one row per attribute, placed by its index column.
func readPosWeights(store *artifacts.Store, id artifacts.ID, n int) ([]float32, error) {
	tbl, err := store.GetTable(id)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	if kind := artifacts.KindOf(tbl.Schema()); kind != artifacts.KindWeights {
		return nil, fmt.Errorf("weights %s: is a %q artifact", id.Short(), kind)
	}
	w := make([]float32, n)
	seen := make([]bool, n)
	reader := array.NewTableReader(tbl, 0)
	defer reader.Release()
	for reader.Next() {
		rec := reader.RecordBatch()
		index, weight, err := weightColumns(rec)
		if err != nil {
			return nil, fmt.Errorf("weights %s: %w", id.Short(), err)
		}
		for r := range int(rec.NumRows()) {
			i := index(r)
			if i < 0 || i >= n || seen[i] {
				return nil, fmt.Errorf("weights %s: row %d: attribute index %d out of 0..%d or repeated",
					id.Short(), r, i, n-1)
			}
			w[i], seen[i] = weight(r), true
		}
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("weights %s: no weight for attribute %d", id.Short(), i)
		}
	}
	return w, nil
}

// weightColumns returns accessors of the index and pos_weight columns,
// whichever integer and float widths the table uses.
func weightColumns(rec arrow.RecordBatch) (func(int) int, func(int) float32, error) {
	var index func(int) int
	var weight func(int) float32
	for i, f := range rec.Schema().Fields() {
		col := rec.Column(i)
		switch f.Name {
		case "index":
			switch c := col.(type) {
			case *array.Int32:
				index = func(r int) int { return int(c.Value(r)) }
			case *array.Int64:
				index = func(r int) int { return int(c.Value(r)) }
			}
		case "pos_weight":
			switch c := col.(type) {
			case *array.Float32:
				weight = c.Value
			case *array.Float64:
				weight = func(r int) float32 { return float32(c.Value(r)) }
			}
		}
	}
	if index == nil || weight == nil {
		return nil, nil, fmt.Errorf("want an integer column index and a float column pos_weight")
	}
	return index, weight, nil
}
