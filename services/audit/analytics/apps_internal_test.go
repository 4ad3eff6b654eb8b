package analytics

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
)

type apps map[string]string // name (App_ID or code) -> App_ID

func (a apps) ResolveApps(_ context.Context, names []string) (map[string]string, bool) {
	if a == nil {
		return nil, false
	}
	out := map[string]string{}
	for _, n := range names {
		if id, ok := a[n]; ok {
			out[n] = id
		}
	}
	return out, true
}

// TestResolveApps: codes become App_IDs (once each), a name no application
// has is refused (from a question: bad request; from the settings: the
// setting named), and names are taken as given when identity cannot list
// the applications.
func TestResolveApps(t *testing.T) {
	ctx := context.Background()
	known := apps{"hr": "01HR", "01HR": "01HR", "01CRM": "01CRM"}
	got, err := resolveApps(ctx, known, []string{"hr", "01HR", "01CRM"}, false)
	if err != nil || !slices.Equal(got, []string{"01HR", "01CRM"}) {
		t.Fatalf("resolve: %v %v", got, err)
	}
	_, err = resolveApps(ctx, known, []string{"hr", "oa"}, false)
	if apierr.CodeOf(err) != apierr.InvalidArgument || !strings.Contains(err.Error(), "oa") {
		t.Fatalf("an unknown application asked: %v", err)
	}
	_, err = resolveApps(ctx, known, []string{"oa"}, true)
	if apierr.CodeOf(err) != apierr.FailedPrecondition || !strings.Contains(err.Error(), "important_apps names no application by oa") {
		t.Fatalf("an unknown application in the settings: %v", err)
	}
	got, err = resolveApps(ctx, apps(nil), []string{"oa"}, false)
	if err != nil || !slices.Equal(got, []string{"oa"}) {
		t.Fatalf("identity not answering: %v %v", got, err)
	}
}
