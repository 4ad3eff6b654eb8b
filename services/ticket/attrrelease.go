package ticket

import (
	"slices"
	"strings"

	uiaslog "github.com/uias/uias/pkg/log"
)

// Attribute release policy (ADR 0037; Apereo CAS's attribute release
// policies: "return allowed" and attribute value masking): a registered
// service may name the attributes its validations release
// (ReleaseAttributes; none named: all, as before) and those released
// masked (MaskedAttributes). It applies to CAS 3.0 p3/serviceValidate and
// p3/proxyValidate, samlValidate, and the ID token and userinfo claims of
// an OpenID Connect client (the claim of each attribute, ClaimOf). The
// CAS protocol attributes (authenticationDate,
// longTermAuthenticationRequestTokenUsed, isFromNewLogin), the CAS user
// (login) and the OpenID Connect sub are always answered: they are the
// protocol's, not the person's data.

// Releasable attributes: the names a policy may list.
var ReleasableAttributes = []string{"userId", "authLevel", "login", "displayName", "orgId", "orgName",
	"appAccountId", "groups", "memberOf", "roles", "permissions", "userType"}

// MaskableAttributes are the attributes a policy may release masked, with
// the rule of each (MaskValue).
var MaskableAttributes = []string{"displayName"}

// ProtocolAttributes are released whatever a policy says.
var ProtocolAttributes = []string{"authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin"}

// MaxPolicyAttributes bounds the names of a policy's lists.
const MaxPolicyAttributes = 32

// claimOf maps a CAS attribute to the OpenID Connect claim that carries
// it ("" for none).
var claimOf = map[string]string{"login": "preferred_username", "displayName": "name", "orgId": "org_id",
	"orgName": "org_name", "appAccountId": "app_account", "groups": "groups", "roles": "roles", "permissions": "permissions",
	"userType": "user_type"}

// UserTypeName is the released value of an account's type (identity's
// UserType: 1 person, 2 unit, ADR 0039): "person" or "unit"; "" for an
// unknown or unanswered type (not released).
func UserTypeName(t int32) string {
	switch t {
	case 1:
		return "person"
	case 2:
		return "unit"
	}
	return ""
}

// AttributePolicy is a service's attribute release policy. The zero
// value releases everything in clear.
type AttributePolicy struct {
	// Release names the attributes released (empty: all).
	Release []string
	// Masked names the attributes released masked.
	Masked []string
}

// Policy is the service's attribute release policy (nil: none, all in
// clear).
func (r *RegisteredService) Policy() *AttributePolicy {
	if r == nil || len(r.ReleaseAttributes) == 0 && len(r.MaskedAttributes) == 0 {
		return nil
	}
	return &AttributePolicy{Release: r.ReleaseAttributes, Masked: r.MaskedAttributes}
}

// Releases reports whether the policy releases attribute name (a
// protocol attribute always).
func (p *AttributePolicy) Releases(name string) bool {
	if p == nil || len(p.Release) == 0 || slices.Contains(ProtocolAttributes, name) {
		return true
	}
	return slices.Contains(p.Release, name)
}

// Value is attribute name's value v as the policy releases it: masked or
// as it is; ok false when the policy does not release it.
func (p *AttributePolicy) Value(name, v string) (string, bool) {
	if !p.Releases(name) {
		return "", false
	}
	if p != nil && slices.Contains(p.Masked, name) {
		return MaskValue(name, v), true
	}
	return v, true
}

// MaskValue masks attribute name's value v by its rule: a name keeps its
// first character (pkg/log MaskName: 张三 -> 张*).
func MaskValue(name, v string) string {
	switch name {
	case "displayName":
		return uiaslog.MaskName(v)
	}
	return uiaslog.MaskSecret(v)
}

// Apply filters and masks CAS attributes (name, value pairs, repeated
// names for more values) by the policy.
func (p *AttributePolicy) Apply(attrs [][2]string) [][2]string {
	if p == nil {
		return attrs
	}
	out := attrs[:0:0]
	for _, a := range attrs {
		if v, ok := p.Value(a[0], a[1]); ok {
			out = append(out, [2]string{a[0], v})
		}
	}
	return out
}

// ApplyClaims filters and masks OpenID Connect claims by the policy: a
// claim that carries an attribute the policy leaves out is removed, one
// it masks is masked. sub and the token's own claims are kept.
func (p *AttributePolicy) ApplyClaims(c map[string]any) {
	if p == nil {
		return
	}
	for attr, claim := range claimOf {
		v, present := c[claim]
		if !present {
			continue
		}
		if !p.Releases(attr) {
			delete(c, claim)
			continue
		}
		if s, ok := v.(string); ok {
			c[claim], _ = p.Value(attr, s)
		}
	}
}

// checkPolicy checks a service's attribute release policy (names known,
// each once; masked ones released).
func checkPolicy(s *RegisteredService) error {
	known := func(list []string, allowed []string, field string) error {
		if len(list) > MaxPolicyAttributes {
			return badService(field + " names too many attributes")
		}
		for i, n := range list {
			if !slices.Contains(allowed, n) {
				return badService(field + ": unknown attribute " + quote(n) + "; known: " + strings.Join(allowed, ", "))
			}
			if slices.Contains(list[:i], n) {
				return badService(field + " names " + quote(n) + " twice")
			}
		}
		return nil
	}
	if err := known(s.ReleaseAttributes, ReleasableAttributes, "release_attributes"); err != nil {
		return err
	}
	if err := known(s.MaskedAttributes, MaskableAttributes, "masked_attributes"); err != nil {
		return err
	}
	if len(s.ReleaseAttributes) > 0 {
		for _, n := range s.MaskedAttributes {
			if !slices.Contains(s.ReleaseAttributes, n) {
				return badService("masked_attributes names " + quote(n) + ", which release_attributes does not release")
			}
		}
	}
	if s.LegacyScheme != 0 && s.Policy() != nil {
		return badService("a legacy service's validation answers the account only: release_attributes and " +
			"masked_attributes apply to CAS and OpenID Connect services")
	}
	return nil
}

// quote quotes a name for a message (at most 64 bytes of it).
func quote(n string) string {
	if len(n) > 64 {
		n = n[:64] + "..."
	}
	return `"` + n + `"`
}
