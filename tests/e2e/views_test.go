package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// identity's ViewService (the current state of objects by id, for the
// sync component's provisioning of imports) is for UIAS components only:
// a client over the network is refused, an administrator too. In process,
// a person's view is the data of their CHANGES events (personal data
// masked), unknown ids are left out, an unknown entity is refused.
func TestViewServiceIsForComponents(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("views", "vera", nil, nil)
	views := identityv1.NewViewServiceClient(e.conn)
	req := &identityv1.GetViewsRequest{Entity: "user", Ids: []string{f.userID}}
	_, err := views.GetViews(context.Background(), req)
	wantCode(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	_, err = views.GetViews(e.adm(), req)
	wantCode(t, err, codes.PermissionDenied, "PERMISSION_DENIED")

	svc := e.app.Value(identitycomponent.Name).(*identitycomponent.Handle).Service
	vs, err := svc.Views(context.Background(), "user", []string{"no-such-user", f.userID})
	if err != nil || len(vs) != 1 || vs[0].ID != f.userID {
		t.Fatalf("views %+v %v", vs, err)
	}
	var d map[string]any
	if err := json.Unmarshal(vs[0].Data, &d); err != nil || d["login_name"] != "vera" || d["org_id"] == "" {
		t.Fatalf("view data %s %v", vs[0].Data, err)
	}
	if _, ok := d["password_hash"]; ok {
		t.Fatalf("a view carries the password hash: %s", vs[0].Data)
	}
	// An application's view (sync checks a subscription's App_ID with it)
	// carries no secret.
	vs, err = svc.Views(context.Background(), "app", []string{f.appID, "no-such-app"})
	if err != nil || len(vs) != 1 || vs[0].ID != f.appID {
		t.Fatalf("views of apps %+v %v", vs, err)
	}
	if err := json.Unmarshal(vs[0].Data, &d); err != nil || d["app_code"] != "views" || strings.Contains(string(vs[0].Data), "secret_hash") ||
		strings.Contains(string(vs[0].Data), f.secret) {
		t.Fatalf("app view data %s %v", vs[0].Data, err)
	}
	var ae *apierr.Error
	if _, err := svc.Views(context.Background(), "apps", []string{f.appID}); !errors.As(err, &ae) || ae.Code != apierr.InvalidArgument {
		t.Fatalf("views of an unknown entity: %v", err)
	}
}
