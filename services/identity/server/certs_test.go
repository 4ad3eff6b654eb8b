package server

import (
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// TestCertVerdictsMatchProto: CertificateLogin converts a verdict by its
// number; the proto enum must keep the domain's numbers.
func TestCertVerdictsMatchProto(t *testing.T) {
	for v, want := range map[identity.CertVerdict]identityv1.CertificateLoginResult{
		identity.CertOK:                identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_OK,
		identity.CertNotVerified:       identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_NOT_VERIFIED,
		identity.CertNotRegistered:     identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_NOT_REGISTERED,
		identity.CertExpired:           identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_EXPIRED,
		identity.CertAccountLocked:     identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_LOCKED,
		identity.CertAccountDisabled:   identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_DISABLED,
		identity.CertPasswordOnly:      identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_PASSWORD_ONLY,
		identity.CertChallengeInvalid:  identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_CHALLENGE_INVALID,
		identity.CertChallengeExpired:  identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_CHALLENGE_EXPIRED,
		identity.CertChallengeReplayed: identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_CHALLENGE_REPLAYED,
		identity.CertSignatureInvalid:  identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_SIGNATURE_INVALID,
		identity.CertUntrusted:         identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_UNTRUSTED,
		identity.CertRevoked:           identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_REVOKED,
	} {
		if got := identityv1.CertificateLoginResult(v); got != want {
			t.Errorf("%v: proto %v, want %v", v, got, want)
		}
	}
}
