package app_test

import (
	"testing"
	"time"

	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestOperatorsPeersExample: the example of "Sign-in across centres" loads
// and validates: a level-2 centre with its own key and level 1 as its one
// peer, reached at its external URL with its public key from a file.
func TestOperatorsPeersExample(t *testing.T) {
	cfg := operatorsExample(t, "peers-example", nil)
	tc := ticketcomponent.Settings(&cfg)
	if tc.Centre != "l2a" || tc.PeerKeyFile == "" || tc.PeerAssertionTTL != time.Minute || tc.PeerProbe != 30*time.Second ||
		len(tc.Peers) != 1 || tc.Peers[0].Name != "l1" || tc.Peers[0].URL != "https://sso.msa.example" ||
		tc.Peers[0].PublicKeyFile == "" || tc.Peers[0].DisplayName == "" {
		t.Fatalf("ticket peers: %+v", tc)
	}
}
