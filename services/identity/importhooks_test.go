package identity

import "testing"

// SetImportBatchRows makes the batches of the imports of test t n rows.
func SetImportBatchRows(t testing.TB, n int) {
	old := importBatchRows
	importBatchRows = n
	t.Cleanup(func() { importBatchRows = old })
}
