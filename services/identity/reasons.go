package identity

import "github.com/uias/uias/pkg/apierr"

// The identity component's error reasons. The error funnel (apierr) answers
// every error carrying one of them with the code, legacy code and HTTP status
// declared here; docs/integrators.md lists them (generated from this table).
// Store errors (NOT_FOUND, ALREADY_EXISTS, STORAGE_UNAVAILABLE) are the
// platform's (pkg/store, with INVALID_PAGE_TOKEN), and so are BAD_REQUEST
// (pkg/apierr) and the application caller reasons (pkg/caller).
// ReasonIDNumberTaken: another account of this centre has the same ID type
// and number (identity.policy.unique_id_number).
const ReasonIDNumberTaken = "ID_NUMBER_TAKEN"

// ReasonSecretLifetimeTooShort: a secret lifetime that would end the
// application's working secret at once (UpdateApp).
const ReasonSecretLifetimeTooShort = "SECRET_LIFETIME_TOO_SHORT"

// reasonPersonalDataUnreadable: a stored sealed value (ID or phone number,
// authenticator app secret) does not open with this centre's data keys.
const reasonPersonalDataUnreadable = "PERSONAL_DATA_UNREADABLE"

// ErrIDNumberTaken is the error of a person whose ID type and number another
// account of this centre has; it names neither account nor the number.
var ErrIDNumberTaken = apierr.New(apierr.AlreadyExists, ReasonIDNumberTaken,
	"another account already has this ID number (one account per person)")

func init() {
	apierr.Register(
		// Replicas of other centres (replica.go).
		apierr.Reason{Name: "REPLICA_NOT_A_CENTRE", Code: apierr.FailedPrecondition, Legacy: -5,
			Doc: "A replica of another centre was handed to a single-centre deployment (sync.centre is not set)."},

		// Load.
		apierr.Reason{Name: "OVERLOADED", Code: apierr.ResourceExhausted, Legacy: -6,
			Doc: "The call needs a password hash and its projected wait for a hashing worker exceeds the server's identity.max_hash_wait (default 3 s) or the call's deadline: it is refused at once rather than queued. Verdicts that need no hash (unknown, locked or disabled account, fingerprint) are answered as usual, and a refusal is not a failed login. Retry after a short, jittered back-off; give password calls a deadline of a few seconds."},

		// The login gate (loginguard.go).
		apierr.Reason{Name: "LOGIN_THROTTLED", Code: apierr.ResourceExhausted, Legacy: -6,
			Doc: "Too many failed passwords from this source (or for this account from many sources): the check was refused without being made. Metadata `retry_after_seconds` says when to try again (REST: `Retry-After`)."},

		// Caller authentication of administrators (application callers:
		// pkg/caller).
		apierr.Reason{Name: "BAD_ADMIN_TOKEN", Code: apierr.Unauthenticated,
			Doc: "The administrator bearer token is missing, invalid or expired; log in again."},
		apierr.Reason{Name: "NOT_ADMIN", Code: apierr.PermissionDenied,
			Doc: "The call requires an administrator."},
		apierr.Reason{Name: "BAD_ADMIN_LOGIN", Code: apierr.Unauthenticated,
			Doc: "AdminLogin: unknown login name, a person who is no administrator, wrong password, or an account that is locked or disabled (all answered alike)."},
		apierr.Reason{Name: "PASSWORD_CHANGE_REQUIRED", Code: apierr.FailedPrecondition,
			Doc: "AdminLogin: the password was right, but it has expired, was set by another person (an administrator's create, set or reset: an administrator logs in with a password of their own), or must be changed (must_change_password, a reset of one's own); no token was issued. Log in again with `new_password` set (`uias ctl login --password-stdin --new-password-stdin`): the password is replaced and the token issued in one call."},

		// Request data (malformed requests: apierr.ReasonBadRequest).
		apierr.Reason{Name: "WEAK_PASSWORD", Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "The new password breaks the password policy; the message says which rule."},
		apierr.Reason{Name: "PASSWORD_REUSED", Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "The new password equals the current one or one of the previous ones."},
		apierr.Reason{Name: ReasonSecretRotatedSince, Code: apierr.FailedPrecondition, Legacy: -5,
			Doc: "RotateAppSecret with if_secret_issued_at: the application's secret was issued again after that time (e.g. a double click or a reload of the console's answer re-posting its form); no secret was issued."},
		apierr.Reason{Name: ReasonAccountStateChanging, Code: apierr.FailedPrecondition,
			Doc: "LockUser, UnlockUser, SetUserStatus: the person's account kept changing state (other administrators' locks, unlocks, disables, the login gate's locks) while this change was written, retried a few times; nothing was changed. Look at the person again and retry."},
		apierr.Reason{Name: ReasonPasswordChangedSince, Code: apierr.FailedPrecondition, Legacy: -5,
			Doc: "ResetPassword with if_password_changed_at: the person's password changed after that time (another reset, their own change; e.g. a reload of the console's answer re-posting its form); nothing was reset."},

		// Authentication and password changes.
		apierr.Reason{Name: "VERIFICATION_FAILED", Code: apierr.FailedPrecondition, Legacy: -1,
			Doc: "ChangePassword: old password wrong, account locked or disabled (counts towards the lockout)."},
		apierr.Reason{Name: "CANNOT_CHANGE_PASSWORD", Code: apierr.FailedPrecondition,
			Doc: "ChangePassword, or AdminLogin with a new_password: the user's password can only be changed by an administrator."},
		apierr.Reason{Name: "TEMPORARY_PASSWORD_IMPOSSIBLE", Code: apierr.FailedPrecondition,
			Doc: "ResetPassword: no random password meets the password policy (a minimum length above 128 characters); set one with SetPassword."},
		apierr.Reason{Name: "PASSWORD_EXPIRY_OFF", Code: apierr.FailedPrecondition,
			Doc: "ListUsers with password_expired: passwords do not expire here (identity.policy.max_age_days is 0), so none has expired."},

		// Administration of the org tree (deletion).
		apierr.Reason{Name: "ORG_NOT_EMPTY", Code: apierr.FailedPrecondition,
			Doc: "DeleteOrg: orgs, people or groups are still under the org (the message says which); move or delete them first."},

		// Application secrets (secretlife.go).
		apierr.Reason{Name: ReasonSecretLifetimeTooShort, Code: apierr.FailedPrecondition,
			Doc: "UpdateApp secret_lifetime_seconds: the lifetime is shorter than the current App_Secret's age, so it would stop working at once and cut the application's callers off; rotate the secret first (RotateAppSecret, with an overlap) or give a longer lifetime."},

		// Administration of applications (deletion).
		apierr.Reason{Name: "APP_ACTIVE", Code: apierr.FailedPrecondition,
			Doc: "DeleteApp: the application is active; suspend it first (UpdateApp status SUSPENDED: its callers are refused with APP_SUSPENDED, which shows whether anything still uses it), then delete it."},

		// Administration of people.
		apierr.Reason{Name: ReasonIDNumberTaken, Code: apierr.AlreadyExists,
			Doc: "CreateUser, UpdateUser (a corrected ID number), import: another account already has this ID type and number (one account per person; identity.policy.unique_id_number, on by default), at this centre or, in a two-level deployment with identity.uniqueness.key_file, at another centre (the message says so). The other account is not named: find it by the ID number (administrators who may read personal data)."},
		apierr.Reason{Name: ReasonUniquenessUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "CreateUser, UpdateUser (a new ID number), import rows, at a level-2 centre with identity.uniqueness.peer_unreachable refuse: the level-1 centre did not answer within identity.uniqueness.wait whether the login name or ID number is another person's at another centre, so nothing was written; retry when the link to level 1 is back (the default, allow, creates the person and audits it UNIQUENESS_UNCHECKED)."},
		apierr.Reason{Name: ReasonUniquenessRefused, Code: apierr.PermissionDenied,
			Doc: "Level 1's answer to another centre's question whether a login name or ID number is taken (never a client's): the asking centre is not one level 1 knows (sync.subtrees; the centre is the NATS subject the leaf link allows it). The asking centre treats it as an unanswered question (identity.uniqueness.peer_unreachable)."},
		apierr.Reason{Name: ReasonUniquenessRateLimited, Code: apierr.ResourceExhausted,
			Doc: "Level 1's answer to another centre's question whether a login name or ID number is taken (never a client's): the centre asked faster than identity.uniqueness.peer_rate (burst peer_burst, per level-1 instance). The asking centre treats it as an unanswered question (identity.uniqueness.peer_unreachable); level 1 counts it in uias_uniqueness_questions_total{outcome=\"rate_limited\"}."},
		apierr.Reason{Name: "OWN_ACCOUNT", Code: apierr.FailedPrecondition,
			Doc: "An administrator cannot disable, lock or delete their own account (the last system administrator would lock everyone out of administration); another administrator does it."},

		// Administration of the org tree.
		apierr.Reason{Name: "ROOT_ORG", Code: apierr.FailedPrecondition,
			Doc: "The root org cannot be disabled, moved or deleted."},
		apierr.Reason{Name: "ORG_CYCLE", Code: apierr.FailedPrecondition,
			Doc: "An org cannot be moved under itself or its own subtree."},
		apierr.Reason{Name: "PARENT_DISABLED", Code: apierr.FailedPrecondition,
			Doc: "The (new) parent org is disabled or below a disabled org."},
		apierr.Reason{Name: "ORG_DISABLED", Code: apierr.FailedPrecondition,
			Doc: "The user's or group's org is disabled or below a disabled org."},

		// Personal data at rest and its keys (KeyService).
		apierr.Reason{Name: reasonPersonalDataUnreadable, Code: apierr.FailedPrecondition,
			Doc: "A user's stored ID number or phone does not decrypt with the data keys; the update was refused so nothing is erased."},
		apierr.Reason{Name: "KEY_RING_MISMATCH", Code: apierr.FailedPrecondition,
			Doc: "KeyService: the instance's key ring does not fit the stored data keys (see its log)."},
		apierr.Reason{Name: "ROTATION_CONFLICT", Code: apierr.FailedPrecondition,
			Doc: "RotateKeys: another rotation happened at the same time; check the key status and retry if needed."},
		apierr.Reason{Name: "KEYS_UNAVAILABLE", Code: apierr.FailedPrecondition,
			Doc: "KeyService: this instance runs without key management."},
	)
}
