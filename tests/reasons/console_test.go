package reasons

import (
	"testing"

	// The binary's components register their reasons.
	_ "github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/gateway/console"
	"github.com/uias/uias/pkg/apierr"
)

// The console acts on some of identity's reasons by name (an OTP prompt,
// a password change, a stale reset): each is registered, so a renamed
// reason fails here rather than turning a prompt into a generic error.
func TestConsoleReasonsAreRegistered(t *testing.T) {
	for _, r := range console.ReasonsHandled() {
		if _, ok := apierr.Lookup(r); !ok {
			t.Errorf("the console acts on reason %s, which no component registers", r)
		}
	}
}
