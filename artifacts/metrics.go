package artifacts

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Schema metadata keys of a metrics table.
const (
	// MetaImages is the number of images evaluated.
	MetaImages = "stitch.images"
	// MetaMacroAttributes is how many attributes have a positive label,
	// the attributes every macro average is taken over.
	MetaMacroAttributes = "stitch.macro_attributes"
)

// MetricRow is one row of a metrics table, in long format.
type MetricRow struct {
	// K is the top-k cut-off; 0 for threshold-free metrics (map, auc).
	K int
	// Scope is "all", "type:NAME" or "category".
	Scope string
	// Average is "micro", "macro", "pooled", "global" or "".
	Average string
	// Metric is "recall", "precision", "f1", "map", "auc" or "accuracy".
	Metric string
	Value  float64
	// Note says what the value is over, for people ("macro over 950 of
	// 1000 attributes with positives").
	Note string
}

// MetricsInfo is the schema metadata of a metrics table.
type MetricsInfo struct {
	Images, Attributes, MacroAttributes int
}

// MetricsSchema returns the schema of a metrics table.
func MetricsSchema(info MetricsInfo) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int32},
		{Name: "scope", Type: arrow.BinaryTypes.String},
		{Name: "average", Type: arrow.BinaryTypes.String},
		{Name: "metric", Type: arrow.BinaryTypes.String},
		{Name: "value", Type: arrow.PrimitiveTypes.Float64},
		{Name: "note", Type: arrow.BinaryTypes.String},
	}, withKind(KindMetrics,
		MetaImages, strconv.Itoa(info.Images),
		MetaAttributes, strconv.Itoa(info.Attributes),
		MetaMacroAttributes, strconv.Itoa(info.MacroAttributes)))
}

// PutMetrics stores rows as a metrics table.
func (s *Store) PutMetrics(info MetricsInfo, rows []MetricRow) (ID, error) {
	schema := MetricsSchema(info)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int32Builder).Append(int32(r.K))
		b.Field(1).(*array.StringBuilder).Append(r.Scope)
		b.Field(2).(*array.StringBuilder).Append(r.Average)
		b.Field(3).(*array.StringBuilder).Append(r.Metric)
		b.Field(4).(*array.Float64Builder).Append(r.Value)
		b.Field(5).(*array.StringBuilder).Append(r.Note)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return s.PutRecords(schema, rec)
}

// GetMetrics reads a metrics table.
func (s *Store) GetMetrics(id ID) (MetricsInfo, []MetricRow, error) {
	var info MetricsInfo
	tbl, err := s.getKind(id, KindMetrics)
	if err != nil {
		return info, nil, err
	}
	defer tbl.Release()
	md := tbl.Schema().Metadata()
	var err1, err2, err3 error
	info.Images, err1 = metaInt(md, MetaImages)
	info.Attributes, err2 = metaInt(md, MetaAttributes)
	info.MacroAttributes, err3 = metaInt(md, MetaMacroAttributes)
	if err := firstErr(err1, err2, err3); err != nil {
		return info, nil, fmt.Errorf("metrics %s: %w", id.Short(), err)
	}
	var rows []MetricRow
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error {
		k, err1 := column[*array.Int32](rec, "k")
		scope, err2 := column[*array.String](rec, "scope")
		avg, err3 := column[*array.String](rec, "average")
		metric, err4 := column[*array.String](rec, "metric")
		value, err5 := column[*array.Float64](rec, "value")
		note, err6 := column[*array.String](rec, "note")
		if err := firstErr(err1, err2, err3, err4, err5, err6); err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			rows = append(rows, MetricRow{
				K: int(k.Value(i)), Scope: scope.Value(i), Average: avg.Value(i),
				Metric: metric.Value(i), Value: value.Value(i), Note: note.Value(i),
			})
		}
		return nil
	})
	if err != nil {
		return info, nil, fmt.Errorf("metrics %s: %w", id.Short(), err)
	}
	return info, rows, nil
}

// AttributeMetricRow is one row of a per-attribute metrics table: one
// attribute at one cut-off k.
type AttributeMetricRow struct {
	K        int
	Index    int
	Name     string
	Type     int
	TypeName string
	// Positives, Predicted, TP and FP are the attribute's top-k counts.
	Positives, Predicted, TP, FP int64
	Recall, Precision, F1        float64
	// AP and AUC do not depend on k; HasAP and HasAUC say whether they
	// are defined (they are null in the table when not).
	AP, AUC       float64
	HasAP, HasAUC bool
}

// AttributeMetricsSchema is the schema of a per-attribute metrics table
// (kind table).
var AttributeMetricsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "k", Type: arrow.PrimitiveTypes.Int32},
	{Name: "index", Type: arrow.PrimitiveTypes.Int32},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "type", Type: arrow.PrimitiveTypes.Int32},
	{Name: "type_name", Type: arrow.BinaryTypes.String},
	{Name: "positives", Type: arrow.PrimitiveTypes.Int64},
	{Name: "predicted", Type: arrow.PrimitiveTypes.Int64},
	{Name: "tp", Type: arrow.PrimitiveTypes.Int64},
	{Name: "fp", Type: arrow.PrimitiveTypes.Int64},
	{Name: "recall", Type: arrow.PrimitiveTypes.Float64},
	{Name: "precision", Type: arrow.PrimitiveTypes.Float64},
	{Name: "f1", Type: arrow.PrimitiveTypes.Float64},
	{Name: "ap", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "auc", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, withKind(KindTable, MetaTable, TableAttributeMetrics))

// MetaTable names what a table-kind artifact holds.
const MetaTable = "stitch.table"

// TableAttributeMetrics is the MetaTable value of a per-attribute metrics
// table.
const TableAttributeMetrics = "attribute_metrics"

// PutAttributeMetrics stores rows as a per-attribute metrics table.
func (s *Store) PutAttributeMetrics(rows []AttributeMetricRow) (ID, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, AttributeMetricsSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int32Builder).Append(int32(r.K))
		b.Field(1).(*array.Int32Builder).Append(int32(r.Index))
		b.Field(2).(*array.StringBuilder).Append(r.Name)
		b.Field(3).(*array.Int32Builder).Append(int32(r.Type))
		b.Field(4).(*array.StringBuilder).Append(r.TypeName)
		for j, v := range []int64{r.Positives, r.Predicted, r.TP, r.FP} {
			b.Field(5 + j).(*array.Int64Builder).Append(v)
		}
		for j, v := range []float64{r.Recall, r.Precision, r.F1} {
			b.Field(9 + j).(*array.Float64Builder).Append(v)
		}
		appendOptional(b.Field(12).(*array.Float64Builder), r.AP, r.HasAP)
		appendOptional(b.Field(13).(*array.Float64Builder), r.AUC, r.HasAUC)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return s.PutRecords(AttributeMetricsSchema, rec)
}

func appendOptional(b *array.Float64Builder, v float64, ok bool) {
	if ok {
		b.Append(v)
	} else {
		b.AppendNull()
	}
}

// GetAttributeMetrics reads a per-attribute metrics table.
func (s *Store) GetAttributeMetrics(id ID) ([]AttributeMetricRow, error) {
	tbl, err := s.getKind(id, KindTable)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	if got := metaString(tbl.Schema().Metadata(), MetaTable); got != TableAttributeMetrics {
		return nil, fmt.Errorf("object %s: is a %q table, want %q", id.Short(), got, TableAttributeMetrics)
	}
	var rows []AttributeMetricRow
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error {
		ints := make([]*array.Int32, 3)
		for j, name := range []string{"k", "index", "type"} {
			var err error
			if ints[j], err = column[*array.Int32](rec, name); err != nil {
				return err
			}
		}
		name, err1 := column[*array.String](rec, "name")
		typeName, err2 := column[*array.String](rec, "type_name")
		if err := firstErr(err1, err2); err != nil {
			return err
		}
		counts := make([]*array.Int64, 4)
		for j, n := range []string{"positives", "predicted", "tp", "fp"} {
			var err error
			if counts[j], err = column[*array.Int64](rec, n); err != nil {
				return err
			}
		}
		floats := make([]*array.Float64, 5)
		for j, n := range []string{"recall", "precision", "f1", "ap", "auc"} {
			var err error
			if floats[j], err = column[*array.Float64](rec, n); err != nil {
				return err
			}
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			rows = append(rows, AttributeMetricRow{
				K: int(ints[0].Value(i)), Index: int(ints[1].Value(i)), Type: int(ints[2].Value(i)),
				Name: name.Value(i), TypeName: typeName.Value(i),
				Positives: counts[0].Value(i), Predicted: counts[1].Value(i),
				TP: counts[2].Value(i), FP: counts[3].Value(i),
				Recall: floats[0].Value(i), Precision: floats[1].Value(i), F1: floats[2].Value(i),
				AP: floats[3].Value(i), HasAP: floats[3].IsValid(i),
				AUC: floats[4].Value(i), HasAUC: floats[4].IsValid(i),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("attribute metrics %s: %w", id.Short(), err)
	}
	return rows, nil
}
