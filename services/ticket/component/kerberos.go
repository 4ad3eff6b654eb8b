package component

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/uias/uias/services/ticket/cas"
)

// realmRE is a Kerberos realm as ticket.kerberos takes it: upper-case
// letters, digits, dots and hyphens (AD realms are the DNS domain in upper
// case).
var realmRE = regexp.MustCompile(`^[A-Z0-9][A-Z0-9.-]{0,254}$`)

// spnRE is the service principal: service/host@REALM.
var spnRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*)/([A-Za-z0-9.-]{1,253})@([A-Z0-9][A-Z0-9.-]{0,254})$`)

// validate checks ticket.kerberos (enabled); bad reports a field.
func (k *KerberosConfig) validate(bad func(field, format string, a ...any)) {
	if k.KeytabFile == "" {
		bad("keytab_file", "is required with kerberos.enabled: the keytab of the service principal (ktpass on Active Directory, kadmin ktadd on MIT)")
	}
	if !spnRE.MatchString(k.ServicePrincipal) {
		bad("service_principal", "must be the page's service principal HTTP/<host the browsers reach>@REALM (realm in upper case), got %q",
			k.ServicePrincipal)
	}
	for _, r := range k.Realms {
		if !realmRE.MatchString(r) {
			bad("realms", "must be Kerberos realms in upper case (e.g. MSA.EXAMPLE), got %q", r)
		}
	}
	for _, l := range []struct {
		field string
		v     []string
	}{{"strip_suffix", k.StripSuffix}, {"login_suffix", k.LoginSuffix}} {
		if _, err := realmMap(l.v); err != nil {
			bad(l.field, "%v", err)
		}
	}
	for _, r := range k.CaseSensitiveRealms {
		if !realmRE.MatchString(r) {
			bad("case_sensitive_realms", "must be Kerberos realms in upper case (e.g. LAB.EXAMPLE), got %q", r)
		}
	}
	for _, n := range k.Networks {
		if _, err := netip.ParsePrefix(n); err != nil {
			bad("networks", "must be networks in CIDR notation (e.g. 10.20.0.0/16), got %q", n)
		}
	}
	// One login space per realm (review sec27a H1): two accepted realms
	// whose login names can meet (the same login_suffix, none included,
	// or one ending with the other, as ".sz" and "": alice.sz@B would be
	// alice@A) would sign one realm's people in as the other's.
	if suffix, err := realmMap(k.LoginSuffix); err == nil {
		realms := slices.Clone(k.Realms)
		if len(realms) == 0 {
			if m := spnRE.FindStringSubmatch(k.ServicePrincipal); m != nil {
				realms = []string{m[3]}
			}
		}
		slices.Sort(realms)
		realms = slices.Compact(realms)
	pairs:
		for i, a := range realms {
			for _, b := range realms[i+1:] {
				if suffixesMeet(suffix[a], suffix[b]) {
					bad("login_suffix", "realms %s and %s map into the same login names (login_suffix %q and %q): "+
						"the same name in both would be one person; give each accepted realm a login_suffix of its own "+
						"that does not end with the other's (e.g. %s=@a, %s=@b)", a, b, suffix[a], suffix[b], a, b)
					break pairs
				}
			}
		}
	}
}

// suffixesMeet says whether names of two realms with login suffixes a and
// b can map to one login name: the longer ends with the shorter and what
// it adds before it could be part of a name (no '@', which a mapped name
// never has).
func suffixesMeet(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	return strings.HasSuffix(a, b) && !strings.Contains(a[:len(a)-len(b)], "@")
}

// affixRE is what strip_suffix and login_suffix take off or add to a
// name (login names are ASCII).
var affixRE = regexp.MustCompile(`^[A-Za-z0-9@._-]{1,64}$`)

// realmMap reads "REALM=text" entries.
func realmMap(v []string) (map[string]string, error) {
	out := map[string]string{}
	for _, e := range v {
		realm, text, ok := strings.Cut(e, "=")
		if !ok || !realmRE.MatchString(realm) || !affixRE.MatchString(text) {
			return nil, fmt.Errorf("entries must be REALM=text (realm in upper case; text 1-64 letters, digits, '@', '.', '_' or '-'), got %q", e)
		}
		if _, dup := out[realm]; dup {
			return nil, fmt.Errorf("realm %s is given twice", realm)
		}
		out[realm] = text
	}
	return out, nil
}

// kerberos returns the login page's Kerberos sign-in (nil when off): the
// rules of ticket.kerberos (validated) and its keytab, which must hold a
// key of the service principal and not be open to others (mode 0600 or
// 0440 unless ticket.key_file_allow_open_mode).
func (c *Config) kerberos() (*cas.Kerberos, error) {
	k := c.Kerberos
	if !k.Enabled {
		return nil, nil
	}
	data, err := readKeyFile(k.KeytabFile, secretMask, c.KeyFileAllowOpenMode)
	if om := (*openModeError)(nil); errors.As(err, &om) {
		return nil, fmt.Errorf("ticket.kerberos.keytab_file %w: anyone who reads it can pose as this server to every browser of the domain", err)
	}
	if err != nil {
		return nil, fmt.Errorf("ticket.kerberos.keytab_file: %w", err)
	}
	m := spnRE.FindStringSubmatch(k.ServicePrincipal)
	if m == nil {
		return nil, fmt.Errorf("ticket.kerberos.service_principal %q is not HTTP/host@REALM", k.ServicePrincipal)
	}
	rules := cas.KerberosRules{Service: m[1] + "/" + m[2], Realm: m[3], Realms: map[string]bool{}}
	for _, r := range k.Realms {
		rules.Realms[r] = true
	}
	if len(rules.Realms) == 0 {
		rules.Realms[m[3]] = true
	}
	if rules.Strip, err = realmMap(k.StripSuffix); err != nil {
		return nil, fmt.Errorf("ticket.kerberos.strip_suffix: %w", err)
	}
	if rules.Suffix, err = realmMap(k.LoginSuffix); err != nil {
		return nil, fmt.Errorf("ticket.kerberos.login_suffix: %w", err)
	}
	rules.CaseSensitive = map[string]bool{}
	for _, r := range k.CaseSensitiveRealms {
		rules.CaseSensitive[r] = true
	}
	for _, n := range k.Networks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("ticket.kerberos.networks: %q is not a network in CIDR notation", n)
		}
		rules.Networks = append(rules.Networks, p.Masked())
	}
	kr, err := cas.NewKerberos(data, rules)
	if err != nil {
		return nil, fmt.Errorf("ticket.kerberos.keytab_file %s: %w", k.KeytabFile, err)
	}
	return kr, nil
}
