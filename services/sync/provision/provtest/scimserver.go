package provtest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/uias/uias/services/sync/provision/scimsim"
)

// SCIMResources is one resource type of the SCIM server that plays the
// business system (package scimsim, which the provisioning bench also
// uses).
type SCIMResources = scimsim.Resources

// NewSCIMResources returns an empty resource type.
func NewSCIMResources() *SCIMResources { return scimsim.NewResources() }

// SCIMHandler is the SCIM 2.0 service provider over users and groups,
// checking the bearer token.
func SCIMHandler(users, groups *SCIMResources, token string) (http.Handler, error) {
	return scimsim.Handler(users, groups, token)
}

// StartSCIM serves SCIMHandler on a loopback port until the test ends; mw
// may replace the answers (faults).
func StartSCIM(t testing.TB, users, groups *SCIMResources, token string, mw func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	h, err := SCIMHandler(users, groups, token)
	if err != nil {
		t.Fatal(err)
	}
	if mw != nil {
		h = mw(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
