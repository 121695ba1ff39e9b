package artifacts

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Attribute is one row of an attributes table.
type Attribute struct {
	// Index is the attribute's position in every labels and scores vector.
	Index int
	Name  string
	// Type is the DeepFashion type id (1 texture, 2 fabric, 3 shape,
	// 4 part, 5 style) or, in the fine layout, the group id.
	Type     int
	TypeName string
}

// AttributesSchema is the schema of an attributes table.
var AttributesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "index", Type: arrow.PrimitiveTypes.Int32},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "type", Type: arrow.PrimitiveTypes.Int32},
	{Name: "type_name", Type: arrow.BinaryTypes.String},
}, withKind(KindAttributes))

// PutAttributes stores attrs as an attributes table.
func (s *Store) PutAttributes(attrs []Attribute) (ID, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, AttributesSchema)
	defer b.Release()
	for _, a := range attrs {
		b.Field(0).(*array.Int32Builder).Append(int32(a.Index))
		b.Field(1).(*array.StringBuilder).Append(a.Name)
		b.Field(2).(*array.Int32Builder).Append(int32(a.Type))
		b.Field(3).(*array.StringBuilder).Append(a.TypeName)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return s.PutRecords(AttributesSchema, rec)
}

// GetAttributes reads an attributes table.
func (s *Store) GetAttributes(id ID) ([]Attribute, error) {
	tbl, err := s.getKind(id, KindAttributes)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	var attrs []Attribute
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error {
		idx, err1 := column[*array.Int32](rec, "index")
		name, err2 := column[*array.String](rec, "name")
		typ, err3 := column[*array.Int32](rec, "type")
		typeName, err4 := column[*array.String](rec, "type_name")
		if err := firstErr(err1, err2, err3, err4); err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			attrs = append(attrs, Attribute{
				Index: int(idx.Value(i)), Name: name.Value(i),
				Type: int(typ.Value(i)), TypeName: typeName.Value(i),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("attributes %s: %w", id.Short(), err)
	}
	return attrs, nil
}

// Category is one row of a categories table.
type Category struct {
	// ID is DeepFashion's 1-based category id.
	ID   int    `json:"id"`
	Name string `json:"name"`
	// BodyType is 1 upper-body, 2 lower-body, 3 full-body (0 unknown).
	BodyType int `json:"body_type,omitempty"`
}

// CategoryColumns maps each category id of table to its position there:
// the column in which a model or a baseline scores it. An id below 1 or
// listed twice is an error, since scores could not be told apart.
func CategoryColumns(table []Category) (map[int32]int, error) {
	col := make(map[int32]int, len(table))
	for i, c := range table {
		if _, dup := col[int32(c.ID)]; dup || c.ID < 1 {
			return nil, fmt.Errorf("categories table: id %d (%q) is below 1 or repeated", c.ID, c.Name)
		}
		col[int32(c.ID)] = i
	}
	return col, nil
}

// CategoriesSchema is the schema of a categories table.
var CategoriesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int32},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "body_type", Type: arrow.PrimitiveTypes.Int32},
}, withKind(KindCategories))

// PutCategories stores cats as a categories table.
func (s *Store) PutCategories(cats []Category) (ID, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, CategoriesSchema)
	defer b.Release()
	for _, c := range cats {
		b.Field(0).(*array.Int32Builder).Append(int32(c.ID))
		b.Field(1).(*array.StringBuilder).Append(c.Name)
		b.Field(2).(*array.Int32Builder).Append(int32(c.BodyType))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return s.PutRecords(CategoriesSchema, rec)
}

// GetCategories reads a categories table.
func (s *Store) GetCategories(id ID) ([]Category, error) {
	tbl, err := s.getKind(id, KindCategories)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	var cats []Category
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error {
		ids, err1 := column[*array.Int32](rec, "id")
		name, err2 := column[*array.String](rec, "name")
		body, err3 := column[*array.Int32](rec, "body_type")
		if err := firstErr(err1, err2, err3); err != nil {
			return err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			cats = append(cats, Category{ID: int(ids.Value(i)), Name: name.Value(i), BodyType: int(body.Value(i))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("categories %s: %w", id.Short(), err)
	}
	return cats, nil
}

func withKind(kind string, kv ...string) *arrow.Metadata {
	keys := []string{MetaKind}
	values := []string{kind}
	for i := 0; i+1 < len(kv); i += 2 {
		keys = append(keys, kv[i])
		values = append(values, kv[i+1])
	}
	md := arrow.NewMetadata(keys, values)
	return &md
}

func (s *Store) getKind(id ID, kind string) (arrow.Table, error) {
	tbl, err := s.GetTable(id)
	if err != nil {
		return nil, err
	}
	if got := KindOf(tbl.Schema()); got != kind {
		tbl.Release()
		return nil, fmt.Errorf("object %s: is a %q artifact, want %q", id.Short(), got, kind)
	}
	return tbl, nil
}

// eachRecord calls fn on every record batch of tbl.
func eachRecord(tbl arrow.Table, fn func(arrow.RecordBatch) error) error {
	reader := array.NewTableReader(tbl, 1<<20)
	defer reader.Release()
	for reader.Next() {
		if err := fn(reader.RecordBatch()); err != nil {
			return err
		}
	}
	return reader.Err()
}

// column returns the named column of rec as type T.
func column[T arrow.Array](rec arrow.RecordBatch, name string) (T, error) {
	var zero T
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return zero, fmt.Errorf("no column %q", name)
	}
	col, ok := rec.Column(idx[0]).(T)
	if !ok {
		return zero, fmt.Errorf("column %q has type %s", name, rec.Column(idx[0]).DataType())
	}
	return col, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func metaInt(md arrow.Metadata, key string) (int, error) {
	i := md.FindKey(key)
	if i < 0 {
		return 0, fmt.Errorf("schema metadata has no %q", key)
	}
	n, err := strconv.Atoi(md.Values()[i])
	if err != nil {
		return 0, fmt.Errorf("schema metadata %q: %w", key, err)
	}
	return n, nil
}

func metaString(md arrow.Metadata, key string) string {
	if i := md.FindKey(key); i >= 0 {
		return md.Values()[i]
	}
	return ""
}
