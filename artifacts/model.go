package artifacts

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ModelMeta is what is needed to use a model's ONNX bytes. It travels in the
// model artifact and, as metadata_props, in the ONNX model itself.
type ModelMeta struct {
	// Input and Output name the graph's image input (NCHW float32) and its
	// per-attribute output.
	Input  string `json:"input"`
	Output string `json:"output"`
	// OutputIsLogits says whether Output holds logits (apply a sigmoid) or
	// probabilities already.
	OutputIsLogits bool `json:"output_is_logits"`
	Height         int  `json:"height"`
	Width          int  `json:"width"`
	// Pixel preprocessing: x = (pixel/Scale - Mean[c]) / Std[c], RGB order.
	Scale float32    `json:"scale"`
	Mean  [3]float32 `json:"mean"`
	Std   [3]float32 `json:"std"`
	// Attributes are the outputs in order.
	Attributes []Attribute `json:"attributes"`
	// Backbone names where the model came from (zoo name or file).
	Backbone string `json:"backbone"`
	// CategoryOutput names the graph's category output, [batch,
	// len(Categories)] logits (apply a softmax), one per entry of
	// Categories in order; "" when the model predicts no category.
	CategoryOutput string     `json:"category_output,omitempty"`
	Categories     []Category `json:"categories,omitempty"`
	// Crop records how training read image files: cut to their box grown
	// by a margin, or whole. nil when training read an images table (the
	// images stage cropped) and for models from elsewhere.
	Crop *CropSpec `json:"crop,omitempty"`
}

// CropSpec is how images are read before resizing: cut to their bounding
// box (where they have one) grown by Margin of its size on each side, or
// whole when Crop is false.
type CropSpec struct {
	Crop   bool    `json:"crop"`
	Margin float64 `json:"margin"`
}

// Model is a model artifact: ONNX bytes plus their metadata.
type Model struct {
	ONNX []byte
	Meta ModelMeta
}

// ModelSchema is the schema of a model table (one row).
var ModelSchema = arrow.NewSchema([]arrow.Field{
	{Name: "onnx", Type: arrow.BinaryTypes.Binary},
	{Name: "meta", Type: arrow.BinaryTypes.String},
}, withKind(KindModel))

// PutModel stores m as a model table.
func (s *Store) PutModel(m *Model) (ID, error) {
	meta, err := json.Marshal(m.Meta)
	if err != nil {
		return ID{}, fmt.Errorf("put model: %w", err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, ModelSchema)
	defer b.Release()
	b.Field(0).(*array.BinaryBuilder).Append(m.ONNX)
	b.Field(1).(*array.StringBuilder).Append(string(meta))
	rec := b.NewRecordBatch()
	defer rec.Release()
	return s.PutRecords(ModelSchema, rec)
}

// GetModel reads a model table.
func (s *Store) GetModel(id ID) (*Model, error) {
	tbl, err := s.getKind(id, KindModel)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	var m *Model
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error {
		onnx, err1 := column[*array.Binary](rec, "onnx")
		meta, err2 := column[*array.String](rec, "meta")
		if err := firstErr(err1, err2); err != nil {
			return err
		}
		if rec.NumRows() < 1 || m != nil {
			return fmt.Errorf("want exactly one row")
		}
		m = &Model{ONNX: append([]byte{}, onnx.Value(0)...)}
		return json.Unmarshal([]byte(meta.Value(0)), &m.Meta)
	})
	if err == nil && m == nil {
		err = fmt.Errorf("empty table")
	}
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", id.Short(), err)
	}
	return m, nil
}

// Predictions holds scores per sample and attribute, row-major:
// Scores[i*NumAttributes+a] is the probability of attribute a on Image[i].
// A model with a category output adds one probability per category.
type Predictions struct {
	NumAttributes int
	Image         []string
	Scores        []float32
	// NumCategories is the number of category scores per row: 0 when the
	// model predicts no category, else len(Categories).
	NumCategories int
	// CategoryScores[i*NumCategories+c] is the probability (a softmax over
	// the row) of category Categories[c] on Image[i]. Columns follow the
	// model's categories, not ids: match them by Categories[c].ID.
	CategoryScores []float32
	Categories     []Category
	// AttributeNames are the names of the scored attributes in column
	// order, as the model knows them (nil when the scores come from no
	// model, as a baseline's): evaluate checks them against its
	// attributes table.
	AttributeNames []string
}

// MetaAttributeNames is the schema metadata key of a predictions table
// whose attribute names are known: the JSON of the names, in order.
const MetaAttributeNames = "stitch.attribute_names"

// MetaCategories is the schema metadata key of a predictions table that
// holds category scores: the JSON of its categories, in column order.
const MetaCategories = "stitch.categories"

// PredictionsSchema returns the schema of a predictions table with n
// attribute scores per row and no category scores.
func PredictionsSchema(n int) *arrow.Schema {
	return predictionsSchema(n, nil, "", "")
}

// predictionsSchema adds the category_scores column, and the categories
// as metadata, when cats is not empty, and the attribute names when
// namesJSON is not empty.
func predictionsSchema(n int, cats []Category, catsJSON, namesJSON string) *arrow.Schema {
	fields := []arrow.Field{
		{Name: "image", Type: arrow.BinaryTypes.String},
		{Name: "scores", Type: arrow.FixedSizeListOf(int32(n), arrow.PrimitiveTypes.Float32)},
	}
	kv := []string{MetaAttributes, strconv.Itoa(n)}
	if len(cats) > 0 {
		fields = append(fields, arrow.Field{Name: "category_scores",
			Type: arrow.FixedSizeListOf(int32(len(cats)), arrow.PrimitiveTypes.Float32)})
		kv = append(kv, MetaCategories, catsJSON)
	}
	if namesJSON != "" {
		kv = append(kv, MetaAttributeNames, namesJSON)
	}
	return arrow.NewSchema(fields, withKind(KindPredictions, kv...))
}

// PutPredictions stores p as a predictions table; the category_scores
// column is written only when p has category scores.
func (s *Store) PutPredictions(p *Predictions) (ID, error) {
	if len(p.Scores) != len(p.Image)*p.NumAttributes {
		return ID{}, fmt.Errorf("put predictions: %d scores for %d rows x %d attributes",
			len(p.Scores), len(p.Image), p.NumAttributes)
	}
	if p.NumCategories != len(p.Categories) || len(p.CategoryScores) != len(p.Image)*p.NumCategories {
		return ID{}, fmt.Errorf("put predictions: %d category scores for %d rows x %d categories (%d named)",
			len(p.CategoryScores), len(p.Image), p.NumCategories, len(p.Categories))
	}
	if err := checkCategoryIDs(p.Categories); err != nil {
		return ID{}, fmt.Errorf("put predictions: %w", err)
	}
	var catsJSON []byte
	if p.NumCategories > 0 {
		var err error
		if catsJSON, err = json.Marshal(p.Categories); err != nil {
			return ID{}, fmt.Errorf("put predictions: categories: %w", err)
		}
	}
	var namesJSON []byte
	if p.AttributeNames != nil {
		if len(p.AttributeNames) != p.NumAttributes {
			return ID{}, fmt.Errorf("put predictions: %d attribute names for %d attributes",
				len(p.AttributeNames), p.NumAttributes)
		}
		var err error
		if namesJSON, err = json.Marshal(p.AttributeNames); err != nil {
			return ID{}, fmt.Errorf("put predictions: attribute names: %w", err)
		}
	}
	schema := predictionsSchema(p.NumAttributes, p.Categories, string(catsJSON), string(namesJSON))
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues(p.Image, nil)
	appendLists := func(col int, values []float32) {
		lb := b.Field(col).(*array.FixedSizeListBuilder)
		for range p.Image {
			lb.Append(true)
		}
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(values, nil)
	}
	appendLists(1, p.Scores)
	if p.NumCategories > 0 {
		appendLists(2, p.CategoryScores)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return s.PutRecords(schema, rec)
}

// checkCategoryIDs refuses ids below 1 and repeated ids, which could not
// be matched to a categories table.
func checkCategoryIDs(cats []Category) error {
	seen := make(map[int]bool, len(cats))
	for _, c := range cats {
		if c.ID < 1 || seen[c.ID] {
			return fmt.Errorf("category id %d (%q): want ids of 1 or more, each once", c.ID, c.Name)
		}
		seen[c.ID] = true
	}
	return nil
}

// GetPredictions reads a predictions table. A table written before
// predictions carried category scores reads with NumCategories 0.
func (s *Store) GetPredictions(id ID) (*Predictions, error) {
	tbl, err := s.getKind(id, KindPredictions)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	md := tbl.Schema().Metadata()
	n, err := metaInt(md, MetaAttributes)
	if err != nil {
		return nil, fmt.Errorf("predictions %s: %w", id.Short(), err)
	}
	p := &Predictions{NumAttributes: n}
	if names := metaString(md, MetaAttributeNames); names != "" {
		if err := json.Unmarshal([]byte(names), &p.AttributeNames); err != nil {
			return nil, fmt.Errorf("predictions %s: schema metadata %q: %w", id.Short(), MetaAttributeNames, err)
		}
		if len(p.AttributeNames) != n {
			return nil, fmt.Errorf("predictions %s: %d attribute names for %d attributes",
				id.Short(), len(p.AttributeNames), n)
		}
	}
	withCategories := len(tbl.Schema().FieldIndices("category_scores")) > 0
	if withCategories {
		if err := json.Unmarshal([]byte(metaString(md, MetaCategories)), &p.Categories); err != nil {
			return nil, fmt.Errorf("predictions %s: schema metadata %q: %w", id.Short(), MetaCategories, err)
		}
		if err := checkCategoryIDs(p.Categories); err != nil {
			return nil, fmt.Errorf("predictions %s: %w", id.Short(), err)
		}
		p.NumCategories = len(p.Categories)
	}
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error {
		img, err1 := column[*array.String](rec, "image")
		scores, err2 := column[*array.FixedSizeList](rec, "scores")
		if err := firstErr(err1, err2); err != nil {
			return err
		}
		rows := int(rec.NumRows())
		for i := range rows {
			p.Image = append(p.Image, img.Value(i))
		}
		p.Scores, err = appendListValues(p.Scores, scores, rows, n)
		if err != nil || !withCategories {
			return err
		}
		cats, err := column[*array.FixedSizeList](rec, "category_scores")
		if err != nil {
			return err
		}
		p.CategoryScores, err = appendListValues(p.CategoryScores, cats, rows, p.NumCategories)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("predictions %s: %w", id.Short(), err)
	}
	return p, nil
}

// appendListValues appends the float32 values of rows fixed-size lists of
// width n to dst.
func appendListValues(dst []float32, col *array.FixedSizeList, rows, n int) ([]float32, error) {
	values, ok := col.ListValues().(*array.Float32)
	if !ok {
		return nil, fmt.Errorf("list values of type %s, want float32", col.ListValues().DataType())
	}
	for i := range rows {
		start, end := col.ValueOffsets(i)
		if int(end-start) != n {
			return nil, fmt.Errorf("row %d: %d values, want %d", i, end-start, n)
		}
		dst = append(dst, values.Float32Values()[start:end]...)
	}
	return dst, nil
}
