package artifacts

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Epoch is one row of a training history: one epoch of one phase.
type Epoch struct {
	// Phase is 1 (head only) or 2 (upper backbone layers unfrozen).
	Phase        int
	Epoch        int
	TrainLoss    float64
	ValLoss      float64
	ValAUC       float64
	LearningRate float64
	// ValCategoryTop1 and ValCategoryTop3 are the category accuracy on the
	// validation images that have a category, NaN without a category head
	// or validation. Wall-clock figures (seconds, images per second) are
	// logged, not stored: they differ from run to run, and two clean runs
	// of a pipeline must give the same artifacts.
	ValCategoryTop1 float64
	ValCategoryTop3 float64
}

// HistorySchema is the schema of a history table.
var HistorySchema = arrow.NewSchema([]arrow.Field{
	{Name: "phase", Type: arrow.PrimitiveTypes.Int32},
	{Name: "epoch", Type: arrow.PrimitiveTypes.Int32},
	{Name: "train_loss", Type: arrow.PrimitiveTypes.Float64},
	{Name: "val_loss", Type: arrow.PrimitiveTypes.Float64},
	{Name: "val_auc", Type: arrow.PrimitiveTypes.Float64},
	{Name: "learning_rate", Type: arrow.PrimitiveTypes.Float64},
	{Name: "val_category_top1", Type: arrow.PrimitiveTypes.Float64},
	{Name: "val_category_top3", Type: arrow.PrimitiveTypes.Float64},
}, withKind(KindHistory))

// PutHistory stores epochs as a history table.
func (s *Store) PutHistory(epochs []Epoch) (ID, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, HistorySchema)
	defer b.Release()
	for _, e := range epochs {
		b.Field(0).(*array.Int32Builder).Append(int32(e.Phase))
		b.Field(1).(*array.Int32Builder).Append(int32(e.Epoch))
		for j, v := range []float64{e.TrainLoss, e.ValLoss, e.ValAUC, e.LearningRate, e.ValCategoryTop1, e.ValCategoryTop3} {
			b.Field(2 + j).(*array.Float64Builder).Append(v)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return s.PutRecords(HistorySchema, rec)
}

// GetHistory reads a history table.
func (s *Store) GetHistory(id ID) ([]Epoch, error) {
	tbl, err := s.getKind(id, KindHistory)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	var epochs []Epoch
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error {
		phase, err1 := column[*array.Int32](rec, "phase")
		epoch, err2 := column[*array.Int32](rec, "epoch")
		if err := firstErr(err1, err2); err != nil {
			return err
		}
		names := []string{"train_loss", "val_loss", "val_auc", "learning_rate", "val_category_top1", "val_category_top3"}
		cols := make([]*array.Float64, len(names))
		for j, name := range names {
			var err error
			if cols[j], err = column[*array.Float64](rec, name); err != nil {
				return err
			}
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			epochs = append(epochs, Epoch{
				Phase: int(phase.Value(i)), Epoch: int(epoch.Value(i)),
				TrainLoss: cols[0].Value(i), ValLoss: cols[1].Value(i), ValAUC: cols[2].Value(i),
				LearningRate: cols[3].Value(i), ValCategoryTop1: cols[4].Value(i), ValCategoryTop3: cols[5].Value(i),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", id.Short(), err)
	}
	return epochs, nil
}
