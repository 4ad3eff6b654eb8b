package component

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/sched"
	"github.com/uias/uias/pkg/x509cert"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/extauth"
	"github.com/uias/uias/services/identity/ldapauth"
	"github.com/uias/uias/services/identity/sqlstore"
)

// SchedAuto as Config.SchedPolicy is the measured default for what the
// process runs: today inherit in every case (SCHED_BATCH slows the other
// components of a process while hashes run, and brought no measurable gain
// to an identity process alone; docs/adr/0004-sched-policy.md).
const SchedAuto = "auto"

// PolicyDefaults are the password and lockout policy.
type PolicyDefaults struct {
	MinLength      int `yaml:"min_length"`      // 8
	RequireClasses int `yaml:"require_classes"` // 3 of {lower, upper, digit, symbol}
	History        int `yaml:"history"`         // 5 previous passwords may not be reused
	MaxFailures    int `yaml:"max_failures"`    // 5 counted failed logins lock the account
	SourceFailures int `yaml:"source_failures"` // 2: one source counts at most this many of them
	LockMinutes    int `yaml:"lock_minutes"`    // 15
	MaxAgeDays     int `yaml:"max_age_days"`    // 90 (0 = never expires)
	// UniqueIDNumber: one account per person (true): a second account
	// with the same ID type and number is refused (ID_NUMBER_TAKEN).
	// False where one person legitimately holds several accounts.
	UniqueIDNumber bool `yaml:"unique_id_number"`
	// SelfServiceDisplayName: a person may change their own display name
	// on the profile page (/cas/profile); false (the default) keeps it
	// the administrator's, like the login name, org and ID number.
	SelfServiceDisplayName bool `yaml:"self_service_display_name"`
	// AuthenticateRequiresOTP: an application's password Authenticate of
	// a person who set up an authenticator app must send its code (otp);
	// without it the answer is REASON_OTP_REQUIRED (-1). False (the
	// default): the password alone decides, as before.
	AuthenticateRequiresOTP bool `yaml:"authenticate_requires_otp"`
	// AdminRequiresOTP: administrators must log in with the code of an
	// authenticator app; one without an app is refused until they set one
	// up on their profile page (/cas/profile/totp). False (the default):
	// only administrators who have an app are asked for its code.
	AdminRequiresOTP bool `yaml:"admin_requires_otp"`
	// RequireIPAllowList: every application must have an IP allow-list
	// (one without is refused at create/update, and its calls are refused
	// IP_ALLOW_LIST_REQUIRED). False (the default): an empty list admits
	// any address.
	RequireIPAllowList bool `yaml:"require_ip_allow_list"`
	// CertIdentityCheck: a people's certificate is bound only from the
	// certificate, and only when its subject carries the person's display
	// name and ID number. False (the default): bindings by thumbprint, and
	// subjects unchecked.
	CertIdentityCheck bool `yaml:"cert_identity_check"`
	// CertAutoBind: a certificate login with a certificate bound to no one
	// binds it to the person it names (their ID number and display name in
	// its subject, issued by a people's CA) and signs them in. Needs
	// cert_identity_check and one account per ID number. False (the
	// default): administrators bind every certificate.
	CertAutoBind bool `yaml:"cert_auto_bind"`
	// MinAuthLevel is the level of every person whose own min_auth_level
	// is 0 (graded authentication, ADR 0020): 1 (the default, also 0) any
	// method, 2 two factors or a certificate.
	MinAuthLevel int `yaml:"min_auth_level"`
}

// LoginThrottle is the login gate's timing (see identity.Throttle).
type LoginThrottle struct {
	AddressFailures int           `yaml:"address_failures"` // 10 failures from one source pass undelayed
	BaseDelay       time.Duration `yaml:"base_delay"`       // 1s, then 2s, 4s, ...
	MaxDelay        time.Duration `yaml:"max_delay"`        // 30s; a source beyond it is refused (429)
	Decay           time.Duration `yaml:"decay"`            // 1m: a source forgets one failure per decay
}

// Config is the identity section of the configuration (YAML key "identity").
type Config struct {
	Argon2      crypto.Argon2Params `yaml:"argon2"`
	HashWorkers int                 `yaml:"hash_workers"` // 0 = GOMAXPROCS
	HashQueue   int                 `yaml:"hash_queue"`   // cap on waiting calls; 0 = none besides max_hash_wait, -1 = no waiting
	// MaxHashWait is the longest a password check may expect to wait for a
	// hash worker (work ahead of it / workers x one hash's duration); beyond
	// it, or beyond the caller's deadline, it is refused at once with
	// OVERLOADED. Default 3s.
	MaxHashWait time.Duration `yaml:"max_hash_wait"`
	// KeyFile is the key ring file (default <DataDir>/keyring.json), e.g. a
	// mounted Secret; KeyRing, the ring itself from UIAS_KEYRING
	// (environment only, never the config file), takes precedence. A key
	// file that group or others may access is refused unless
	// KeyFileAllowOpenMode.
	KeyFile              string `yaml:"key_file"`
	KeyRing              string `yaml:"-"`
	KeyFileAllowOpenMode bool   `yaml:"key_file_allow_open_mode"`
	// UserCacheTTL bounds how long an administrator read (GetUser) may
	// serve a user changed through another instance when its change event
	// is late; 0 turns the user cache off. Default 5s.
	UserCacheTTL time.Duration `yaml:"user_cache_ttl"`
	// SchedPolicy is the Linux CPU scheduling policy of a process that runs
	// the identity service: "batch" switches the whole process to
	// SCHED_BATCH so that short request work does not preempt running
	// password hashes (see package sched); "inherit" leaves the policy the
	// process was started with; "auto" (default) is the measured default,
	// today inherit (docs/adr/0004-sched-policy.md).
	SchedPolicy string         `yaml:"sched_policy"`
	Policy      PolicyDefaults `yaml:"policy"`
	// AdminTokenTTL is the hard lifetime of an administrator token (8h).
	AdminTokenTTL time.Duration `yaml:"admin_token_ttl"`
	// AdminTokenIdle ends an administrator token unused for this long
	// (30m), before its hard lifetime.
	AdminTokenIdle time.Duration `yaml:"admin_token_idle"`
	// LoginThrottle slows down password guessing per source and per
	// account (services/identity/loginguard.go).
	LoginThrottle LoginThrottle `yaml:"login_throttle"`
	// AdminReads caps the administrator listings and searches running at
	// once, apart from logins (0, the default: half the CPUs, at least
	// one); AdminReadTimeout bounds each, waiting included (5s).
	AdminReads       int           `yaml:"admin_reads"`
	AdminReadTimeout time.Duration `yaml:"admin_read_timeout"`
	// UnsaltedCutover (a date, 2027-01-01, or an RFC 3339 time; empty:
	// never): from then on a login whose stored hash is an unsalted fast
	// hash (imported {SHA}, {MD5}, ...; wrapped or not) is answered
	// PASSWORD_EXPIRED, so the person must choose a new password.
	UnsaltedCutover string `yaml:"unsalted_cutover"`
	// UnsaltedWrapRate is how many unsalted hashes a second the background
	// job wraps in argon2id, only with a hash worker idle (default 5; 0:
	// no job).
	UnsaltedWrapRate int `yaml:"unsalted_wrap_rate"`
	// PersonalDataAdmins (deprecated) are login names given authz's
	// personal_data_admin role at start, which decides who may export ID
	// numbers and phone numbers in clear (ExportService reveal_personal);
	// with admin_authz off the list itself decides. Empty, the default:
	// nobody is added. UIAS_PERSONAL_DATA_ADMINS: comma-separated.
	PersonalDataAdmins []string `yaml:"personal_data_admins"`
	// ImportMaxBytes bounds an import file, over gRPC and REST (default
	// 1 GiB).
	ImportMaxBytes int64 `yaml:"import_max_bytes"`
	// ImportCacheMiB is the most page cache (MiB) an import's database
	// connection keeps on SQLite (default 1024; SQLite takes it as the
	// import touches pages, and frees it when the import ends).
	ImportCacheMiB int `yaml:"import_cache_mib"`
	// ImportLoginShare is the share of the time an import writes while
	// logins wait for the CPUs (a password check found every hash worker
	// busy within the last 250 ms; default 0.25; 1: an import never pauses
	// for logins). Logins served without waiting do not pause an import.
	ImportLoginShare float64 `yaml:"import_login_share"`
	// NonceKVReplicas is the replica count of the JetStream bucket of
	// signed requests' nonces (UIAS_REQUEST_NONCES; default 1, as with the
	// embedded NATS server; 3 on a NATS cluster).
	NonceKVReplicas int `yaml:"nonce_kv_replicas"`
	// FingerProbeMemory is how long the digest of a presented fingerprint
	// record is kept (JetStream bucket UIAS_FINGER_PROBES, nonce_kv_replicas
	// replicas): the same record presented again within it is a replay,
	// refused as a wrong finger (default 720h, 30 days; 1h to 8784h).
	FingerProbeMemory time.Duration `yaml:"finger_probe_memory"`
	// CertChallengeCAFile holds the people's CAs (PEM) the certificate
	// sign-in by challenge (the CAS page's USB key, Authenticate auth type
	// 4) trusts, SM2 CAs included (ADR 0033); empty: tls.people_ca_file,
	// else tls.client_ca_file (which the TLS edge also reads, and which
	// therefore cannot hold SM2 CAs). Neither set: no certificate signs in
	// by challenge.
	CertChallengeCAFile string `yaml:"cert_challenge_ca_file"`
	// CertChallengeCRLFile holds the revocation lists (PEM "X509 CRL"
	// blocks, or one DER list) of the challenge sign-in's CAs, SM2-signed
	// ones included (verified with gmsm's smx509); empty: tls.crl_file.
	// Unlike tls.crl_file it needs no server TLS (UIAS behind a
	// TLS-terminating balancer). A list that names a challenge CA but
	// whose signature that CA does not verify fails the start (and a
	// changed file holding one leaves the previous lists in force).
	CertChallengeCRLFile string `yaml:"cert_challenge_crl_file"`
	// BootstrapPassword is the first administrator's password, used only
	// when the database is empty (UIAS_BOOTSTRAP_PASSWORD, environment
	// only); empty generates one and prints it once.
	BootstrapPassword string `yaml:"-"`
	// BootstrapAuditorPassword is the first security auditor's ("auditor")
	// password, used only when the database is empty
	// (UIAS_BOOTSTRAP_AUDITOR_PASSWORD, environment only; it must differ
	// from BootstrapPassword); empty generates one and prints it once.
	BootstrapAuditorPassword string `yaml:"-"`
	// FingerFMR is the target false-match rate of a fingerprint decision
	// (Authenticate auth types 2 and 3): 1e-4 (default, 1 in 10,000) to
	// 1e-2. Each of a person's enrolled fingers is held to FingerFMR / their
	// number, within the matcher's calibration (down to 1e-5).
	FingerFMR float64 `yaml:"finger_fmr"`
	// FingerTemplateCache is how many enrolled fingerprint templates each
	// instance keeps decrypted and prepared for matching in memory (about
	// 5 KB each, each for at most 10 minutes; default 10000; 0: none, so
	// every fingerprint check decrypts and prepares the person's fingers).
	FingerTemplateCache int `yaml:"finger_template_cache"`
	// AdminAuthz (default true): the authz component decides every
	// administrator call (the built-in roles system_admin,
	// security_auditor and unit_admin). The legacy is_admin flag is
	// migrated: identity appoints its holders system_admin in authz and
	// clears the flag (until then it counts as system_admin). false, for a
	// deployment without the authz component only: every is_admin
	// administrator may do everything, as before, in every component.
	AdminAuthz bool `yaml:"admin_authz"`
	// AdminDecisionTTL (default 1s, at most 10s; 0: none) is how long an
	// allowed answer of authz to an administrator call is reused for the
	// same administrator, permission, target and orgs (pkg/adminauth's
	// decision cache). With authz in the same process a change of grants,
	// roles or the mirrored org tree ends the reuse at once; the TTL bounds
	// a revocation made through another process's authz and a grant
	// reaching its valid_until. The same TTL bounds the reuse of what an
	// administrator token resolved to (a logout or a change of the person
	// through another identity replica).
	AdminDecisionTTL time.Duration `yaml:"admin_decision_ttl"`
	// AppSecretLifetime is the default App_Secret lifetime of the
	// applications without one of their own (JR/T 0185-2020 7.3.4), e.g.
	// 2160h (90 days); 0, the default: secrets do not expire. A secret's
	// expiry is fixed when it is issued (created, rotated): setting or
	// changing this applies to the secrets issued afterwards
	// (identity/secretlife.go, docs/operators.md). At most ten years.
	AppSecretLifetime time.Duration `yaml:"app_secret_lifetime"`
	// AppSecretLifetimeA2 is the default App_Secret lifetime of A2
	// applications (security_level 2) without one of their own; 0, the
	// default: app_secret_lifetime. Key validity set by the interface's
	// level (JR/T 0185-2020 7.3.4).
	AppSecretLifetimeA2 time.Duration `yaml:"app_secret_lifetime_a2"`
	// SigningKeyLifetime and SigningKeyLifetimeA2 are the validity periods
	// of request signing keys registered for A1 and A2 applications
	// (JR/T 0185-2020 7.3.4; defaults 0, keys do not expire, and 8760h,
	// one year). A key's expiry is fixed when it is registered: a change
	// applies to keys registered afterwards. At most ten years.
	SigningKeyLifetime   time.Duration `yaml:"signing_key_lifetime"`
	SigningKeyLifetimeA2 time.Duration `yaml:"signing_key_lifetime_a2"`
	// ResponseSigningSM2 offers SM2 for UIAS's signatures of its answers
	// to signed calls (docs/adr/0043-sm2-signatures.md): SM2 keys derived
	// from the key ring (crypto.Ring.SM2, purpose "response signature")
	// are published beside the Ed25519 keys, and the answers to an
	// application that has an SM2 request signing key are signed with SM2
	// (SM3, user ID 1234567812345678). False (the default): every answer
	// is Ed25519 and no SM2 key is published. Give every identity replica
	// the same value.
	ResponseSigningSM2 bool `yaml:"response_signing_sm2"`
	// TOTPIssuer names this service in people's authenticator apps (the
	// issuer of the otpauth URI their phone scans on My profile; default
	// "UIAS"). Changing it changes what new enrolments show; the ones made
	// keep working. At most 64 bytes, without ':'.
	TOTPIssuer string `yaml:"totp_issuer"`
	// LDAPAuth are directories (LDAP, Active Directory) that check the
	// passwords of the people of some org subtrees, who then have no
	// password in UIAS (services/identity/ldapauth, credsource.go,
	// docs/adr/0023-directory-credential-sources.md). Configuration file
	// only; the service accounts' passwords come from a file or the
	// environment.
	LDAPAuth []ldapauth.Config `yaml:"ldap_auth"`
	// ExternalAuthenticators are programs vendors write (face
	// recognition, an SMS code gateway, a token server) that check
	// credentials of kinds UIAS does not know, over the gRPC contract
	// uias.authn.v1.ExternalAuthenticatorService (services/identity/extauth,
	// external.go, docs/adr/0045-external-authenticators.md).
	// Configuration file only.
	ExternalAuthenticators []extauth.Config `yaml:"external_authenticators"`
	// KerberosOrgs limits whom a Kerberos realm's tickets (the CAS page's
	// Windows sign-in, ticket.kerberos) may sign in: entries
	// "REALM=org_code", one per code, a realm may have several. With any
	// entry, a realm not listed signs in no one, and a listed realm only
	// the people of its codes' subtrees (review sec27a H2). Empty: no
	// limit.
	KerberosOrgs []string `yaml:"kerberos_orgs"`
	// Uniqueness: login names and ID numbers one person's across centres
	// (identity/uniq.go, docs/adr/0032-uniqueness-across-centres.md).
	Uniqueness Uniqueness `yaml:"uniqueness"`
}

// Uniqueness is identity.uniqueness: how a level-2 centre asks level 1
// whether a login name or ID number is another person's at another centre.
type Uniqueness struct {
	// PeerUnreachable: what a level-2 centre does while level 1 does not
	// answer within Wait: "allow" (default: it keeps serving its people,
	// 004 §2.1.1; the create is audited UNIQUENESS_UNCHECKED) or "refuse"
	// (UNIQUENESS_UNAVAILABLE).
	PeerUnreachable string `yaml:"peer_unreachable"`
	// Wait bounds the question to level 1 (default 2s; 100ms to 30s).
	Wait time.Duration `yaml:"wait"`
	// Hold is how long level 1 reserves a name or number it allowed for
	// the asking person, until their replica arrives (default 10m; 1m to
	// 24h).
	Hold time.Duration `yaml:"hold"`
	// KeyFile holds the key (32 random bytes, base64 or hex) every centre
	// shares to compare ID numbers across centres, the same file at every
	// centre (e.g. `openssl rand -base64 32`); empty: ID numbers are
	// compared per centre only. Mode 600 or 440 (key_file_allow_open_mode
	// lifts the check).
	KeyFile string `yaml:"key_file"`
	// IDNumbers (default true) compares ID numbers across centres with
	// the centres key. false: this centre computes, stores and sends no
	// centres key, and its people's ID numbers are compared within it only
	// (a level-2 centre that keeps its sealed data from level 1: level 1
	// can reverse a centres key by trying the ID numbers; review sec29b
	// M3, docs/adr/0032).
	IDNumbers bool `yaml:"id_numbers"`
	// PeerRate and PeerBurst (level 1): the questions answered per asking
	// centre and second, per instance (default 20, burst 200); more are
	// refused UNIQUENESS_REFUSED. PeerConcurrent: questions answered at
	// once per instance (default 8); more are shed.
	PeerRate       float64 `yaml:"peer_rate"`
	PeerBurst      int     `yaml:"peer_burst"`
	PeerConcurrent int     `yaml:"peer_concurrent"`
}

// readCentresKey reads identity.uniqueness.key_file: 32 bytes, base64 or
// hex, refusing a file that others may read or its group write unless
// allowOpen.
func readCentresKey(path string, allowOpen bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o037 != 0 && !allowOpen {
		return nil, fmt.Errorf("%s may be read by others or written by its group (mode %v): chmod 600 (or 440) it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's configured key file
	if err != nil {
		return nil, err
	}
	v := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(v); err == nil && len(k) == 32 {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(v); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, fmt.Errorf("%s must hold 32 bytes in base64 or hex (openssl rand -base64 32)", path)
}

// kerberosOrgs reads identity.kerberos_orgs (validated).
func kerberosOrgs(v []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, e := range v {
		realm, code, ok := strings.Cut(e, "=")
		if !ok || realm == "" || code == "" || strings.ToUpper(realm) != realm ||
			strings.ContainsFunc(realm, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') }) ||
			strings.ContainsFunc(code, func(r rune) bool { return r < 0x21 || r == 0x7f || r == ',' || r == '=' }) {
			return nil, fmt.Errorf("entries must be REALM=org_code (realm in upper case as Kerberos writes it, e.g. MSA.EXAMPLE=sz), got %q", e)
		}
		if !slices.Contains(out[realm], code) {
			out[realm] = append(out[realm], code)
		}
	}
	return out, nil
}

// DefaultSigningKeyLifetimeA2 is the default validity period of request
// signing keys registered for A2 applications: a year.
const DefaultSigningKeyLifetimeA2 = 8760 * time.Hour

// Defaults returns the identity defaults.
func Defaults() *Config {
	return &Config{
		Argon2:       crypto.DefaultArgon2(),
		UserCacheTTL: 5 * time.Second,
		MaxHashWait:  crypto.DefaultMaxHashWait,
		SchedPolicy:  SchedAuto,
		Policy: PolicyDefaults{MinLength: 8, RequireClasses: 3, History: 5, MaxFailures: 5, SourceFailures: 2,
			LockMinutes: 15, MaxAgeDays: 90, UniqueIDNumber: true},
		AdminTokenTTL:        8 * time.Hour,
		AdminTokenIdle:       30 * time.Minute,
		SigningKeyLifetimeA2: DefaultSigningKeyLifetimeA2,
		FingerProbeMemory:    identity.DefaultFingerProbeMemory,
		AdminReadTimeout:     identity.DefaultAdminReadTimeout,
		FingerFMR:            identity.DefaultFingerFMR,
		FingerTemplateCache:  identity.DefaultFingerCache,
		UnsaltedWrapRate:     5,
		ImportMaxBytes:       identity.DefaultImportMaxBytes,
		ImportLoginShare:     identity.DefaultImportLoginShare,
		ImportCacheMiB:       sqlstore.DefaultImportCacheMiB,
		AdminAuthz:           true,
		Uniqueness: Uniqueness{PeerUnreachable: "allow", Wait: 2 * time.Second, Hold: 10 * time.Minute,
			IDNumbers: true, PeerRate: 20, PeerBurst: 200, PeerConcurrent: 8},
		TOTPIssuer:       identity.DefaultTOTPIssuer,
		AdminDecisionTTL: adminauth.DefaultDecisionTTL,
		LoginThrottle:    LoginThrottle{AddressFailures: 10, BaseDelay: time.Second, MaxDelay: 30 * time.Second, Decay: time.Minute},
	}
}

// KeyRingSource is where the deployment's key ring is read from (the
// ticket component signs its tickets with the same ring).
func (c *Config) KeyRingSource() crypto.RingSource {
	return crypto.RingSource{Env: c.KeyRing, File: c.KeyFile, AllowOpenFile: c.KeyFileAllowOpenMode}
}

// Settings returns the identity section of cfg (nil if cfg has none).
func Settings(cfg *config.Config) *Config {
	c, _ := cfg.Section(Name).(*Config)
	return c
}

// Bind implements config.Section.
func (c *Config) Bind(b *config.Binder) {
	a := &c.Argon2
	b.Uint(func(v uint64) { a.MemoryKiB = uint32(v) }, func() uint64 { return uint64(a.MemoryKiB) }, 32, "UIAS_ARGON2_MEMORY_KIB", "", "")
	b.Uint(func(v uint64) { a.Time = uint32(v) }, func() uint64 { return uint64(a.Time) }, 32, "UIAS_ARGON2_TIME", "", "")
	b.Uint(func(v uint64) { a.Threads = uint8(v) }, func() uint64 { return uint64(a.Threads) }, 8, "UIAS_ARGON2_THREADS", "", "")
	b.Int(&c.HashWorkers, "UIAS_HASH_WORKERS", "", "")
	b.Int(&c.HashQueue, "UIAS_HASH_QUEUE", "", "")
	b.Duration(&c.MaxHashWait, "UIAS_MAX_HASH_WAIT", "", "")
	b.String(&c.KeyFile, "UIAS_KEY_FILE", "", "")
	b.Secret(&c.KeyRing, "UIAS_KEYRING")
	b.Bool(&c.KeyFileAllowOpenMode, "UIAS_KEY_FILE_ALLOW_OPEN_MODE", "", "")
	b.Duration(&c.UserCacheTTL, "UIAS_USER_CACHE_TTL", "", "")
	b.String(&c.SchedPolicy, "UIAS_SCHED_POLICY", "", "")
	b.Int(&c.Policy.MinLength, "UIAS_POLICY_MIN_LENGTH", "", "")
	b.Int(&c.Policy.RequireClasses, "UIAS_POLICY_REQUIRE_CLASSES", "", "")
	b.Int(&c.Policy.History, "UIAS_POLICY_HISTORY", "", "")
	b.Int(&c.Policy.MaxFailures, "UIAS_POLICY_MAX_FAILURES", "", "")
	b.Int(&c.Policy.SourceFailures, "UIAS_POLICY_SOURCE_FAILURES", "", "")
	b.Int(&c.Policy.LockMinutes, "UIAS_POLICY_LOCK_MINUTES", "", "")
	b.Int(&c.Policy.MaxAgeDays, "UIAS_POLICY_MAX_AGE_DAYS", "", "")
	b.Bool(&c.Policy.UniqueIDNumber, "UIAS_POLICY_UNIQUE_ID_NUMBER", "", "")
	b.Bool(&c.Policy.SelfServiceDisplayName, "UIAS_POLICY_SELF_SERVICE_DISPLAY_NAME", "", "")
	b.Bool(&c.Policy.AuthenticateRequiresOTP, "UIAS_POLICY_AUTHENTICATE_REQUIRES_OTP", "", "")
	b.Bool(&c.Policy.AdminRequiresOTP, "UIAS_POLICY_ADMIN_REQUIRES_OTP", "", "")
	b.Bool(&c.Policy.RequireIPAllowList, "UIAS_POLICY_REQUIRE_IP_ALLOW_LIST", "", "")
	b.Bool(&c.Policy.CertIdentityCheck, "UIAS_POLICY_CERT_IDENTITY_CHECK", "", "")
	b.Bool(&c.Policy.CertAutoBind, "UIAS_POLICY_CERT_AUTO_BIND", "", "")
	b.Int(&c.Policy.MinAuthLevel, "UIAS_POLICY_MIN_AUTH_LEVEL", "", "")
	b.Duration(&c.AdminTokenTTL, "UIAS_ADMIN_TOKEN_TTL", "", "")
	b.Duration(&c.AdminTokenIdle, "UIAS_ADMIN_TOKEN_IDLE", "", "")
	b.Int(&c.LoginThrottle.AddressFailures, "UIAS_LOGIN_THROTTLE_ADDRESS_FAILURES", "", "")
	b.Duration(&c.LoginThrottle.BaseDelay, "UIAS_LOGIN_THROTTLE_BASE_DELAY", "", "")
	b.Duration(&c.LoginThrottle.MaxDelay, "UIAS_LOGIN_THROTTLE_MAX_DELAY", "", "")
	b.Duration(&c.LoginThrottle.Decay, "UIAS_LOGIN_THROTTLE_DECAY", "", "")
	b.Int(&c.AdminReads, "UIAS_ADMIN_READS", "", "")
	b.Duration(&c.AdminReadTimeout, "UIAS_ADMIN_READ_TIMEOUT", "", "")
	b.String(&c.UnsaltedCutover, "UIAS_UNSALTED_CUTOVER", "", "")
	b.Int(&c.UnsaltedWrapRate, "UIAS_UNSALTED_WRAP_RATE", "", "")
	b.Secret(&c.BootstrapPassword, "UIAS_BOOTSTRAP_PASSWORD")
	b.Secret(&c.BootstrapAuditorPassword, "UIAS_BOOTSTRAP_AUDITOR_PASSWORD")
	b.Func("UIAS_PERSONAL_DATA_ADMINS", "", "", func(v string) error {
		c.PersonalDataAdmins = nil
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				c.PersonalDataAdmins = append(c.PersonalDataAdmins, n)
			}
		}
		return nil
	}, func() string { return strings.Join(c.PersonalDataAdmins, ",") })
	b.Func("UIAS_IMPORT_MAX_BYTES", "", "", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number of bytes: %q", v)
		}
		c.ImportMaxBytes = n
		return nil
	}, func() string { return strconv.FormatInt(c.ImportMaxBytes, 10) })
	b.Int(&c.FingerTemplateCache, "UIAS_FINGER_TEMPLATE_CACHE", "", "")
	b.Int(&c.ImportCacheMiB, "UIAS_IMPORT_CACHE_MIB", "", "")
	b.Int(&c.NonceKVReplicas, "UIAS_NONCE_KV_REPLICAS", "", "")
	b.Duration(&c.FingerProbeMemory, "UIAS_FINGER_PROBE_MEMORY", "", "")
	b.String(&c.CertChallengeCAFile, "UIAS_CERT_CHALLENGE_CA_FILE", "", "")
	b.String(&c.CertChallengeCRLFile, "UIAS_CERT_CHALLENGE_CRL_FILE", "", "")
	b.Bool(&c.AdminAuthz, "UIAS_ADMIN_AUTHZ", "", "")
	b.Duration(&c.AdminDecisionTTL, "UIAS_ADMIN_DECISION_TTL", "", "")
	b.Duration(&c.AppSecretLifetime, "UIAS_APP_SECRET_LIFETIME", "", "")
	b.Duration(&c.AppSecretLifetimeA2, "UIAS_APP_SECRET_LIFETIME_A2", "", "")
	b.Duration(&c.SigningKeyLifetime, "UIAS_SIGNING_KEY_LIFETIME", "", "")
	b.Duration(&c.SigningKeyLifetimeA2, "UIAS_SIGNING_KEY_LIFETIME_A2", "", "")
	b.Bool(&c.ResponseSigningSM2, "UIAS_RESPONSE_SIGNING_SM2", "", "")
	b.String(&c.TOTPIssuer, "UIAS_TOTP_ISSUER", "", "")
	b.List(&c.KerberosOrgs, "UIAS_KERBEROS_ORGS", "", "")
	b.String(&c.Uniqueness.PeerUnreachable, "UIAS_UNIQUENESS_PEER_UNREACHABLE", "", "")
	b.Duration(&c.Uniqueness.Wait, "UIAS_UNIQUENESS_WAIT", "", "")
	b.Duration(&c.Uniqueness.Hold, "UIAS_UNIQUENESS_HOLD", "", "")
	b.String(&c.Uniqueness.KeyFile, "UIAS_UNIQUENESS_KEY_FILE", "", "")
	b.Bool(&c.Uniqueness.IDNumbers, "UIAS_UNIQUENESS_ID_NUMBERS", "", "")
	b.Int(&c.Uniqueness.PeerBurst, "UIAS_UNIQUENESS_PEER_BURST", "", "")
	b.Int(&c.Uniqueness.PeerConcurrent, "UIAS_UNIQUENESS_PEER_CONCURRENT", "", "")
	b.Func("UIAS_UNIQUENESS_PEER_RATE", "", "", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", v)
		}
		c.Uniqueness.PeerRate = f
		return nil
	}, func() string { return strconv.FormatFloat(c.Uniqueness.PeerRate, 'g', -1, 64) })
	b.Func("UIAS_IMPORT_LOGIN_SHARE", "", "", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", v)
		}
		c.ImportLoginShare = f
		return nil
	}, func() string { return strconv.FormatFloat(c.ImportLoginShare, 'g', -1, 64) })
	b.Func("UIAS_FINGER_FMR", "", "", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", v)
		}
		c.FingerFMR = f
		return nil
	}, func() string { return strconv.FormatFloat(c.FingerFMR, 'g', -1, 64) })
}

// Complete implements config.Section: the key ring defaults to
// <data_dir>/keyring.json.
func (c *Config) Complete(p *config.Config) {
	if c.KeyFile == "" && p.DataDir != "" {
		c.KeyFile = filepath.Join(p.DataDir, "keyring.json")
	}
}

// Validate implements config.Section.
func (c *Config) Validate(*config.Config) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &config.FieldError{Field: Name + "." + field, Msg: fmt.Sprintf(format, a...)})
	}
	if l := c.Policy.MinAuthLevel; l < 0 || l > 2 {
		bad("policy.min_auth_level", "must be 0 or 1 (any method) or 2 (two factors or a certificate), got %d", l)
	}
	if c.Policy.CertAutoBind && (!c.Policy.CertIdentityCheck || !c.Policy.UniqueIDNumber) {
		bad("policy.cert_auto_bind", "needs policy.cert_identity_check (the people's CAs a certificate must be of) and "+
			"policy.unique_id_number (the ID number in a certificate must be one person's)")
	}
	if iss := c.TOTPIssuer; iss == "" || len(iss) > 64 || strings.ContainsAny(iss, ":\x00\r\n") {
		bad("totp_issuer", "must be 1 to 64 bytes without ':' or control characters, got %q", iss)
	}
	a := c.Argon2
	if a.MemoryKiB < 8*1024 {
		bad("argon2.memory_kib", "must be at least 8192 (8 MiB), got %d", a.MemoryKiB)
	} else if a.MemoryKiB > 1<<20 {
		bad("argon2.memory_kib", "must be at most 1048576 (1 GiB), got %d", a.MemoryKiB)
	}
	if a.Time < 1 || a.Time > 64 {
		bad("argon2.time", "must be between 1 and 64, got %d", a.Time)
	}
	if a.Threads < 1 {
		bad("argon2.threads", "must be at least 1, got %d", a.Threads)
	}
	if a.SaltLen < 16 || a.SaltLen > 1024 {
		bad("argon2.salt_len", "must be between 16 and 1024 bytes, got %d", a.SaltLen)
	}
	if a.KeyLen < 16 || a.KeyLen > 1024 {
		bad("argon2.key_len", "must be between 16 and 1024 bytes, got %d", a.KeyLen)
	}
	if c.HashWorkers < 0 {
		bad("hash_workers", "must be 0 (number of CPUs) or more, got %d", c.HashWorkers)
	}
	if c.HashQueue < -1 {
		bad("hash_queue", "must be -1 (no waiting), 0 (no cap besides max_hash_wait) or more, got %d", c.HashQueue)
	}
	if c.AdminDecisionTTL < 0 || c.AdminDecisionTTL > 10*time.Second {
		bad("admin_decision_ttl", "must be 0 (no cache) to 10s, got %s", c.AdminDecisionTTL)
	}
	for _, l := range []struct {
		key  string
		d    time.Duration
		zero string
	}{{"app_secret_lifetime", c.AppSecretLifetime, "secrets do not expire"},
		{"app_secret_lifetime_a2", c.AppSecretLifetimeA2, "app_secret_lifetime"},
		{"signing_key_lifetime", c.SigningKeyLifetime, "keys do not expire"},
		{"signing_key_lifetime_a2", c.SigningKeyLifetimeA2, "keys do not expire"}} {
		if l.d < 0 || l.d > identity.MaxSecretLifetime {
			bad(l.key, "must be 0 (%s) to 87600h (ten years), e.g. 2160h for 90 days, got %s", l.zero, l.d)
		} else if l.d%time.Second != 0 {
			bad(l.key, "must be whole seconds, got %s", l.d)
		}
	}
	if c.FingerProbeMemory < time.Hour || c.FingerProbeMemory > 8784*time.Hour {
		bad("finger_probe_memory", "must be 1h to 8784h (a year), e.g. 720h for 30 days, got %s", c.FingerProbeMemory)
	}
	if c.MaxHashWait <= 0 || c.MaxHashWait > time.Minute {
		bad("max_hash_wait", "must be more than 0 and at most 1m, got %s", c.MaxHashWait)
	}
	if c.UserCacheTTL < 0 || c.UserCacheTTL > time.Hour {
		bad("user_cache_ttl", "must be between 0 (no cache) and 1h, got %s", c.UserCacheTTL)
	}
	switch c.SchedPolicy {
	case SchedAuto, sched.PolicyBatch, sched.PolicyInherit:
	default:
		bad("sched_policy", "must be %q, %q or %q, got %q", SchedAuto, sched.PolicyBatch, sched.PolicyInherit, c.SchedPolicy)
	}
	if c.KeyFile == "" {
		bad("key_file", "must not be empty (set data_dir or identity.key_file)")
	}
	p := c.Policy
	for _, f := range []struct {
		name string
		v    int
	}{
		{"policy.min_length", p.MinLength}, {"policy.require_classes", p.RequireClasses},
		{"policy.history", p.History}, {"policy.max_failures", p.MaxFailures},
		{"policy.lock_minutes", p.LockMinutes}, {"policy.max_age_days", p.MaxAgeDays},
	} {
		if f.v < 0 {
			bad(f.name, "must not be negative, got %d", f.v)
		}
	}
	if p.MinLength > 128 {
		bad("policy.min_length", "must be at most 128 characters, got %d", p.MinLength)
	}
	if p.RequireClasses > 4 {
		bad("policy.require_classes", "must be at most 4 (lower, upper, digit, symbol), got %d", p.RequireClasses)
	}
	if c.AdminTokenTTL <= 0 {
		bad("admin_token_ttl", "must be positive (e.g. 8h), got %s", c.AdminTokenTTL)
	}
	if c.AdminTokenIdle <= 0 {
		bad("admin_token_idle", "must be positive (e.g. 30m), got %s", c.AdminTokenIdle)
	}
	switch {
	case p.SourceFailures < 1:
		bad("policy.source_failures", "must be at least 1, got %d", p.SourceFailures)
	case p.MaxFailures == 1:
		bad("policy.max_failures", "must be 0 (never lock) or at least 2, so that no single address can lock an account, got 1")
	case p.MaxFailures > 0 && p.SourceFailures >= p.MaxFailures:
		bad("policy.source_failures", "must be less than policy.max_failures (%d), so that no single address can lock an account, got %d",
			p.MaxFailures, p.SourceFailures)
	}
	if c.ImportMaxBytes < 1<<10 || c.ImportMaxBytes > identity.MaxImportMaxBytes {
		bad("import_max_bytes", "must be from 1024 to %d (16 GiB), got %d", identity.MaxImportMaxBytes, c.ImportMaxBytes)
	}
	if c.ImportCacheMiB < 2 || c.ImportCacheMiB > sqlstore.MaxImportCacheMiB {
		bad("import_cache_mib", "must be from 2 to %d (MiB), got %d", sqlstore.MaxImportCacheMiB, c.ImportCacheMiB)
	}
	if c.NonceKVReplicas < 0 || c.NonceKVReplicas > 5 {
		bad("nonce_kv_replicas", "must be from 0 (default: 1) to 5, got %d", c.NonceKVReplicas)
	}
	if !(c.ImportLoginShare >= 0.05 && c.ImportLoginShare <= 1) {
		bad("import_login_share", "must be from 0.05 to 1 (1: an import never pauses for logins), got %g", c.ImportLoginShare)
	}
	if c.AdminReads < 0 {
		bad("admin_reads", "must be 0 (half the CPUs) or more, got %d", c.AdminReads)
	}
	if c.AdminReadTimeout <= 0 || c.AdminReadTimeout > 10*time.Minute {
		bad("admin_read_timeout", "must be more than 0 and at most 10m, got %s", c.AdminReadTimeout)
	}
	if _, err := parseCutover(c.UnsaltedCutover); err != nil {
		bad("unsalted_cutover", "must be a date (2027-01-01) or an RFC 3339 time, got %q", c.UnsaltedCutover)
	}
	if c.UnsaltedWrapRate < 0 {
		bad("unsalted_wrap_rate", "must be 0 (no background wrapping) or more, got %d", c.UnsaltedWrapRate)
	}
	lt := c.LoginThrottle
	if lt.AddressFailures < 1 {
		bad("login_throttle.address_failures", "must be at least 1, got %d", lt.AddressFailures)
	}
	if lt.BaseDelay <= 0 {
		bad("login_throttle.base_delay", "must be positive (e.g. 1s), got %s", lt.BaseDelay)
	}
	if lt.MaxDelay < lt.BaseDelay || lt.MaxDelay > 10*time.Minute {
		bad("login_throttle.max_delay", "must be between base_delay (%s) and 10m, got %s", lt.BaseDelay, lt.MaxDelay)
	}
	if lt.Decay <= 0 {
		bad("login_throttle.decay", "must be positive (e.g. 1m), got %s", lt.Decay)
	}
	if c.FingerTemplateCache < 0 {
		bad("finger_template_cache", "must be 0 (no cache) or more, got %d", c.FingerTemplateCache)
	}
	if !(c.FingerFMR >= 1e-4 && c.FingerFMR <= 1e-2) {
		bad("finger_fmr", "must be between 0.0001 (1 in 10,000) and 0.01, got %g", c.FingerFMR)
	}
	if _, err := kerberosOrgs(c.KerberosOrgs); err != nil {
		bad("kerberos_orgs", "%v", err)
	}
	if u := c.Uniqueness; u.PeerUnreachable != "allow" && u.PeerUnreachable != "refuse" {
		bad("uniqueness.peer_unreachable", "must be allow or refuse, got %q", u.PeerUnreachable)
	}
	if w := c.Uniqueness.Wait; w < 100*time.Millisecond || w > 30*time.Second {
		bad("uniqueness.wait", "must be 100ms to 30s, got %s", w)
	}
	if h := c.Uniqueness.Hold; h < time.Minute || h > 24*time.Hour {
		bad("uniqueness.hold", "must be 1m to 24h, got %s", h)
	}
	if r := c.Uniqueness.PeerRate; r < 1 || r > 10000 {
		bad("uniqueness.peer_rate", "must be 1 to 10000, got %g", r)
	}
	if b := c.Uniqueness.PeerBurst; b < 1 || b > 100000 {
		bad("uniqueness.peer_burst", "must be 1 to 100000, got %d", b)
	}
	if n := c.Uniqueness.PeerConcurrent; n < 1 || n > 256 {
		bad("uniqueness.peer_concurrent", "must be 1 to 256, got %d", n)
	}
	names, orgs := map[string]bool{}, map[string]string{}
	for i := range c.LDAPAuth {
		l := &c.LDAPAuth[i]
		at := fmt.Sprintf("ldap_auth[%d].", i)
		for _, e := range l.Validate() {
			bad(at+e.Field, "%s", e.Msg)
		}
		if l.Name != "" && names[l.Name] {
			bad(at+"name", "%q names another entry too", l.Name)
		}
		names[l.Name] = true
		for _, o := range l.Orgs {
			if other, ok := orgs[o]; ok && other != l.Name {
				bad(at+"orgs", "org %q is listed by %q too: one source per org", o, other)
			}
			orgs[o] = l.Name
		}
	}
	extNames := map[string]bool{}
	for i := range c.ExternalAuthenticators {
		x := &c.ExternalAuthenticators[i]
		at := fmt.Sprintf("external_authenticators[%d].", i)
		for _, e := range x.Validate() {
			bad(at+e.Field, "%s", e.Msg)
		}
		if x.Name != "" && extNames[x.Name] {
			bad(at+"name", "%q names another entry too", x.Name)
		}
		extNames[x.Name] = true
	}
	return errors.Join(errs...)
}

// externalAuthenticators opens identity.external_authenticators (reading
// their CA and client certificate files), logging each; observe counts
// each check's outcome by authenticator (nil: not counted).
func externalAuthenticators(cfg *Config, log *zap.Logger, observe func(name, outcome string)) ([]identity.ExternalSource, func(), error) {
	var out []identity.ExternalSource
	var clients []*extauth.Client
	closeAll := func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}
	for i, x := range cfg.ExternalAuthenticators {
		c, err := extauth.Open(x)
		if err != nil {
			closeAll()
			var fe *extauth.FieldError
			if errors.As(err, &fe) {
				return nil, nil, &config.FieldError{Field: fmt.Sprintf("%s.external_authenticators[%d].%s", Name, i, fe.Field), Msg: fe.Msg}
			}
			return nil, nil, err
		}
		clients = append(clients, c)
		log.Info("external authenticator", zap.String("name", x.Name), zap.String("address", x.Address), zap.Int("level", x.Level),
			zap.Bool("tls", !x.Plaintext), zap.Bool("client_certificate", x.CertFile != ""), zap.Strings("orgs", x.Orgs))
		label := x.Label
		if label == "" {
			label = x.Name
		}
		src := identity.ExternalSource{Name: x.Name, Label: label, Level: x.Level, RequirePassword: x.RequirePassword,
			Orgs: x.Orgs, Auth: c}
		if observe != nil {
			name := x.Name
			src.Observe = func(outcome string) { observe(name, outcome) }
		}
		out = append(out, src)
	}
	return out, closeAll, nil
}

// credentialSources opens identity.ldap_auth (reading CA files and the
// service accounts' passwords), logging each source and warning of one
// whose passwords cross the network in clear.
func credentialSources(cfg *Config, log *zap.Logger) ([]identity.DirectorySource, error) {
	var out []identity.DirectorySource
	for i, l := range cfg.LDAPAuth {
		src, err := ldapauth.Open(l, nil)
		if err != nil {
			var fe *ldapauth.FieldError
			if errors.As(err, &fe) {
				return nil, &config.FieldError{Field: fmt.Sprintf("%s.ldap_auth[%d].%s", Name, i, fe.Field), Msg: fe.Msg}
			}
			return nil, err
		}
		log.Info("credential source", zap.String("name", l.Name), zap.String("url", l.URL), zap.Strings("orgs", l.Orgs),
			zap.Bool("search", l.BindDNTemplate == ""))
		if l.Plaintext() {
			log.Warn("credential source without TLS: people's passwords cross the connection in clear",
				zap.String("name", l.Name), zap.String("url", l.URL), zap.Bool("insecure_plaintext", l.InsecurePlaintext))
		}
		out = append(out, identity.DirectorySource{Source: src, Orgs: l.Orgs})
	}
	return out, nil
}

// parseCutover reads identity.unsalted_cutover: "" (never), a date (UTC
// midnight) or an RFC 3339 time.
func parseCutover(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, v)
}

// peopleCAPool reads the CAs of people's certificates (tls.people_ca_file,
// else tls.client_ca_file: the CAs the edge verifies people's certificates
// against), which identity.policy.cert_identity_check holds a certificate
// to at binding (read only with that policy); nil when neither is set.
func peopleCAPool(c *config.Config) (*x509.CertPool, error) {
	field, file := peopleCAFile(c)
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, &config.FieldError{Field: field, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &config.FieldError{Field: field, Msg: file + ": no PEM certificates found"}
	}
	return pool, nil
}

// peopleCAFile is tls.people_ca_file, else tls.client_ca_file, with the
// setting's name.
func peopleCAFile(c *config.Config) (string, string) {
	if c.TLS.PeopleCAFile != "" {
		return "tls.people_ca_file", c.TLS.PeopleCAFile
	}
	return "tls.client_ca_file", c.TLS.ClientCAFile
}

// challengeCAPool is the pool of identity.cert_challenge_ca_file, else of
// the people's CAs (peopleCAFile), parsed with gmsm's smx509 (SM2 CAs
// too), with the CAs (as crypto/x509 has them: the revocation lists are
// matched to them); nil when none is set. Any certificate of the file that
// does not parse fails the start.
func challengeCAPool(c *Config, env *config.Config) (*smx509.CertPool, []*x509.Certificate, error) {
	field, file := "identity.cert_challenge_ca_file", c.CertChallengeCAFile
	if file == "" {
		field, file = peopleCAFile(env)
	}
	if file == "" {
		return nil, nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, &config.FieldError{Field: field, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	pool := smx509.NewCertPool()
	var cas []*x509.Certificate
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := smx509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, &config.FieldError{Field: field, Msg: fmt.Sprintf("%s: certificate %d: %v", file, len(cas)+1, err)}
		}
		pool.AddCert(cert)
		cas = append(cas, cert.ToX509())
	}
	if len(cas) == 0 {
		return nil, nil, &config.FieldError{Field: field, Msg: file + ": no PEM certificates found"}
	}
	return pool, cas, nil
}

// challengeCRLFile is identity.cert_challenge_crl_file, else tls.crl_file,
// with the setting's name.
func challengeCRLFile(c *Config, env *config.Config) (string, string) {
	if c.CertChallengeCRLFile != "" {
		return "identity.cert_challenge_crl_file", c.CertChallengeCRLFile
	}
	return "tls.crl_file", env.TLS.CRLFile
}

// challengeRevocation reads the challenge sign-in's revocation lists
// (challengeCRLFile; nil when none is set), verified against cas with
// smCRLCheck and failing closed (module.RevocationFileChecked). It needs
// no server TLS, but the challenge CAs (haveCAs).
func challengeRevocation(c *Config, env *config.Config, haveCAs bool, cas []*x509.Certificate, log *zap.Logger) (func() *x509cert.Revocation, error) {
	field, file := challengeCRLFile(c, env)
	if file == "" {
		return nil, nil
	}
	if !haveCAs {
		return nil, &config.FieldError{Field: field, Msg: "the lists revoke the challenge sign-in's certificates: set identity.cert_challenge_ca_file (or tls.people_ca_file)"}
	}
	rev, err := module.RevocationFileChecked(file, cas, smCRLCheck, log)
	if err != nil {
		return nil, &config.FieldError{Field: field, Msg: err.Error()}
	}
	return rev, nil
}

// smCRLCheck verifies a revocation list's signature with gmsm's smx509,
// which verifies SM2 signatures (with the default user ID) as well as RSA
// and ECDSA ones: crypto/x509 cannot, and an SM2 CA's lists would revoke
// nothing.
func smCRLCheck(list *x509.RevocationList, issuer *x509.Certificate) error {
	rl, err := smx509.ParseRevocationList(list.Raw)
	if err != nil {
		return err
	}
	ca, err := smx509.ParseCertificate(issuer.Raw)
	if err != nil {
		return err
	}
	return rl.CheckSignatureFrom(ca)
}
