package component

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/ticket"
)

// idTokenKeys are the ID token keys derived from the ring's signing keys
// (from its master keys in a version-1 ring without a signing set, as the
// tickets' own key).
func idTokenKeys(r *crypto.Ring) (*ticket.IDTokenKeys, error) {
	if len(r.Signing.Keys) > 0 {
		return ticket.NewIDTokenKeys(r.Signing.Active, r.Signing.Keys)
	}
	if len(r.Master.Keys) == 0 {
		return nil, errors.New("the key ring has neither signing nor master keys")
	}
	seeds := make(map[string][]byte, len(r.Master.Keys))
	for id, k := range r.Master.Keys {
		dk, err := hkdf.Key(sha256.New, k, nil, "uias oidc id token v1", 32)
		if err != nil {
			return nil, err
		}
		seeds["m"+id] = dk
	}
	return ticket.NewIDTokenKeys("m"+r.Master.Active, seeds)
}

// profiles answer the ID token's and userinfo's claims from the attributes
// validations release (the same short cache).
type profiles struct{ attrs *attributeCache }

func (p profiles) Profile(ctx context.Context, userID, appID string) (ticket.Profile, error) {
	a, err := p.attrs.Attributes(ctx, userID, appID)
	if err != nil {
		return ticket.Profile{}, err
	}
	return ticket.Profile{Login: a.GetLogin(), Name: a.GetDisplayName(), OrgID: a.GetOrgId(), OrgName: a.GetOrgName(),
		Account: a.GetAppAccountId(), Groups: a.GetGroups()}, nil
}
