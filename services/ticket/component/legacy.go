package component

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/ticket"
)

// identityApps is ticket.LegacyApps over identity's CallerService and
// SSOService (components-only calls).
type identityApps struct {
	callers identityv1.CallerServiceClient
	sso     identityv1.SSOServiceClient
}

// domainErr turns a gRPC error of identity into its *apierr.Error (the
// reason and code identity gave), so the domain tells refusals from
// faults.
func domainErr(err error) error {
	if err == nil {
		return nil
	}
	if ae, ok := apierr.FromStatus(err); ok {
		return ae
	}
	return err
}

func (a identityApps) VerifyApp(ctx context.Context, appID, secret, ip, cert, api string) error {
	_, err := a.callers.VerifyApp(ctx, &identityv1.VerifyAppRequest{AppId: appID, AppSecret: secret, ClientIp: ip,
		ClientCertSha256: cert, Api: api})
	return domainErr(err)
}

func (a identityApps) CheckAddress(ctx context.Context, appID, ip, cert string) error {
	_, err := a.sso.CheckAppAddress(ctx, &identityv1.CheckAppAddressRequest{AppId: appID, ClientIp: ip, ClientCertSha256: cert})
	return domainErr(err)
}

func (a identityApps) Account(ctx context.Context, userID, appID string) (string, error) {
	res, err := a.sso.PersonAttributes(ctx, &identityv1.PersonAttributesRequest{UserId: userID, AppId: appID})
	if err != nil {
		return "", domainErr(err)
	}
	return res.GetAppAccountId(), nil
}

func (a identityApps) IDNumber(ctx context.Context, userID string) (string, error) {
	res, err := a.sso.PersonIdNumber(ctx, &identityv1.PersonIdNumberRequest{UserId: userID})
	if err != nil {
		return "", domainErr(err)
	}
	return res.GetIdNumber(), nil
}

func (a identityApps) Link(ctx context.Context, userID, appID, account string) error {
	_, err := a.sso.LinkAccount(ctx, &identityv1.LinkAccountRequest{UserId: userID, AppId: appID, AppAccountId: account})
	return domainErr(err)
}

func (a identityApps) Unlink(ctx context.Context, userID, appID string) error {
	_, err := a.sso.UnlinkAccount(ctx, &identityv1.UnlinkAccountRequest{UserId: userID, AppId: appID})
	return domainErr(err)
}

func (a identityApps) Links(ctx context.Context, userID string) ([]ticket.PersonLink, error) {
	res, err := a.sso.PersonLinks(ctx, &identityv1.PersonLinksRequest{UserId: userID})
	if err != nil {
		return nil, domainErr(err)
	}
	out := make([]ticket.PersonLink, 0, len(res.GetLinks()))
	for _, l := range res.GetLinks() {
		out = append(out, ticket.PersonLink{AppID: l.GetAppId(), AppName: l.GetAppName(), Account: l.GetAppAccountId()})
	}
	return out, nil
}

// principalClient asks applications ssoAuthService?verb=validatePrincipal
// (POST, form-encoded) with the outbound client (HTTPS with certificate
// verification; plain http only to loopback addresses), up to attempts
// times when there is no answer or a 5xx.
type principalClient struct {
	client   *http.Client
	attempts int
	wait     time.Duration
}

var errNoAnswer = errors.New("the application's ssoAuthService did not answer")

func (p principalClient) ValidatePrincipal(ctx context.Context, endpoint, account, idNumber string) (bool, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" && !config.LoopbackHost(u.Hostname()) {
		return false, fmt.Errorf("validatePrincipal endpoint is not https")
	}
	form := url.Values{"verb": {"validatePrincipal"}, "loginid": {account}, "userid": {idNumber}}
	var last error
	for i := 0; i < max(p.attempts, 1); i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(p.wait << (i - 1)):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return false, err
		}
		// the values are percent-encoded UTF-8 (a legacy Java or GBK
		// application reads them so only when told)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
		resp, err := p.client.Do(req)
		if err != nil {
			last = err
			continue
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode >= 500 || rerr != nil {
			last = errNoAnswer
			continue
		}
		return principalOK(string(body)), nil
	}
	return false, fmt.Errorf("%w: %w", errNoAnswer, last)
}

// principalOK reads an application's validatePrincipal answer: RPC_OK,
// plain or as an XML element's text.
func principalOK(body string) bool {
	b := strings.TrimSpace(body)
	return b == string(ticket.LegacyOK) || strings.Contains(b, ">"+string(ticket.LegacyOK)+"<")
}

// credentialSealer seals kept application passwords with keys derived from
// every master key of the ring under a label of their own (never the master
// keys themselves), in each master key's suite (AES-256-GCM from HKDF-SHA-256,
// SM4-GCM from HKDF-SM3); the active master key seals. (For an AES master
// key the derivation, "uias ticket app passwords v1", is the one used before
// suites existed, so passwords kept then still open.) The active master key
// may be in a cipher machine (Master.Modules, not Master.Keys): a ring whose
// master keys are all in the module is the end state of moving into one
// (sec31b M1).
func credentialSealer(r *crypto.Ring) (*crypto.Sealer, error) {
	if !r.Master.Has(r.Master.Active) {
		return nil, errors.New("the key ring has no active master key")
	}
	return r.PurposeSealer("ticket app passwords")
}
