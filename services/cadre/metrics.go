package cadre

import "github.com/knk-id/knk/internal/metrics"

// importOutcomes names each outcome in knk_import_rows_total. Rows refused in
// the batch (another federation's NIK, a withdrawn cadre) are rejections, which
// ImportCadres counts with the others when it answers.
var importOutcomes = map[outcome]string{
	created: "created", unchanged: "unchanged", changed: "changed", updated: "updated",
}

// countImported adds the outcomes of one committed import batch to the metrics.
func countImported(outcomes []outcome) {
	var n [withdrawn + 1]int
	for _, o := range outcomes {
		n[o]++
	}
	for o, c := range n {
		if name := importOutcomes[outcome(o)]; c > 0 && name != "" {
			metrics.ImportRows.WithLabelValues(name).Add(float64(c))
		}
	}
}
