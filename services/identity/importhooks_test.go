package identity

import "testing"

// SetImportBatchRows makes the batches of the imports of test t n rows.
func SetImportBatchRows(t testing.TB, n int) {
	old := importBatchRows
	importBatchRows = n
	t.Cleanup(func() { importBatchRows = old })
}

// SetImportLoginsActive makes the imports of test t see logins hashing
// (active) or not, whatever the hasher did.
func SetImportLoginsActive(t testing.TB, active bool) {
	old := importLoginsActive
	importLoginsActive = func() bool { return active }
	t.Cleanup(func() { importLoginsActive = old })
}
