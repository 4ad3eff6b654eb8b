package identity

import (
	"testing"
	"time"
)

// SetImportBatchRows makes the batches of the imports of test t n rows.
func SetImportBatchRows(t testing.TB, n int) {
	old := importBatchRows
	importBatchRows = n
	t.Cleanup(func() { importBatchRows = old })
}

// SetImportTxOpenMax sets how long a transaction in which an import paused
// for logins may stay open (importTxOpenMax) for the test.
func SetImportTxOpenMax(t testing.TB, d time.Duration) {
	old := importTxOpenMax
	importTxOpenMax = d
	t.Cleanup(func() { importTxOpenMax = old })
}
