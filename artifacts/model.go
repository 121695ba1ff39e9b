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
type Predictions struct {
	NumAttributes int
	Image         []string
	Scores        []float32
}

// PredictionsSchema returns the schema of a predictions table.
func PredictionsSchema(n int) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "image", Type: arrow.BinaryTypes.String},
		{Name: "scores", Type: arrow.FixedSizeListOf(int32(n), arrow.PrimitiveTypes.Float32)},
	}, withKind(KindPredictions, MetaAttributes, strconv.Itoa(n)))
}

// PutPredictions stores p as a predictions table.
func (s *Store) PutPredictions(p *Predictions) (ID, error) {
	if len(p.Scores) != len(p.Image)*p.NumAttributes {
		return ID{}, fmt.Errorf("put predictions: %d scores for %d rows x %d attributes",
			len(p.Scores), len(p.Image), p.NumAttributes)
	}
	schema := PredictionsSchema(p.NumAttributes)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues(p.Image, nil)
	scores := b.Field(1).(*array.FixedSizeListBuilder)
	for range p.Image {
		scores.Append(true)
	}
	scores.ValueBuilder().(*array.Float32Builder).AppendValues(p.Scores, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	return s.PutRecords(schema, rec)
}

// GetPredictions reads a predictions table.
func (s *Store) GetPredictions(id ID) (*Predictions, error) {
	tbl, err := s.getKind(id, KindPredictions)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	n, err := metaInt(tbl.Schema().Metadata(), MetaAttributes)
	if err != nil {
		return nil, fmt.Errorf("predictions %s: %w", id.Short(), err)
	}
	p := &Predictions{NumAttributes: n}
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error {
		img, err1 := column[*array.String](rec, "image")
		scores, err2 := column[*array.FixedSizeList](rec, "scores")
		if err := firstErr(err1, err2); err != nil {
			return err
		}
		values := scores.ListValues().(*array.Float32).Float32Values()
		for i := 0; i < int(rec.NumRows()); i++ {
			p.Image = append(p.Image, img.Value(i))
			start, end := scores.ValueOffsets(i)
			p.Scores = append(p.Scores, values[start:end]...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("predictions %s: %w", id.Short(), err)
	}
	return p, nil
}
