package totp

import "testing"

func TestWellFormed(t *testing.T) {
	for code, want := range map[string]bool{
		"123456": true, " 123 456 ": true, "000000": true,
		"": false, "12345": false, "1234567": false, "12a456": false, "１２３４５６": false, "12-456": false, "123\t456": false,
	} {
		if got := WellFormed(code); got != want {
			t.Errorf("WellFormed(%q) = %v, want %v", code, got, want)
		}
	}
}
