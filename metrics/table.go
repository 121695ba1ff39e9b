package metrics

// AttributeRow is one row of the per-attribute table at one k.
type AttributeRow struct {
	Index int
	Name  string
	Type  int
	// Positives, Predicted, TP and FP are GT(a), PRED(a), TP(a) and
	// PRED(a) - TP(a).
	Positives, Predicted, TP, FP int64
	Recall, Precision, F1        float64
	// AP and AUC are the attribute's threshold-free metrics; HasAP and
	// HasAUC say whether they are defined (see Ranking).
	AP, AUC       float64
	HasAP, HasAUC bool
}

// PerAttribute returns the rows of the per-attribute table at cut-off t,
// in attribute order. names and types may be nil (empty name, type 0).
func (r *Result) PerAttribute(t *TopK, names []string, types []int) []AttributeRow {
	rows := make([]AttributeRow, len(t.Counts))
	for a, c := range t.Counts {
		row := AttributeRow{
			Index: a, Positives: c.Positives, Predicted: c.Predicted, TP: c.TP, FP: c.FP(),
			Recall: c.Recall(), Precision: c.Precision(), F1: c.F1(),
		}
		if a < len(names) {
			row.Name = names[a]
		}
		if a < len(types) {
			row.Type = types[a]
		}
		if a < len(r.Ranking.AP) {
			row.AP, row.HasAP = r.Ranking.AP[a], r.Ranking.HasAP[a]
			row.AUC, row.HasAUC = r.Ranking.AUC[a], r.Ranking.HasAUC[a]
		}
		rows[a] = row
	}
	return rows
}
