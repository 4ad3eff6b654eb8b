package caller_test

import (
	"context"
	"testing"

	"github.com/uias/uias/pkg/caller"
)

// WithActor is Actor's inverse for a person; any other actor changes nothing.
func TestWithActor(t *testing.T) {
	for actor, want := range map[string]string{"user:u1": "user:u1", "app:a1": "anonymous", "anonymous": "anonymous", "user:": "anonymous", "": "anonymous"} {
		if got := caller.From(caller.WithActor(context.Background(), actor)).Actor(); got != want {
			t.Errorf("WithActor(%q): actor %q, want %q", actor, got, want)
		}
	}
}
