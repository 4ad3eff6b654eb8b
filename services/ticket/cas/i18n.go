package cas

import (
	"net/http"

	"github.com/uias/uias/pkg/pagelang"
)

// texts are the page strings of one language.
type texts struct {
	Title, SignIn, SigningInTo, Username, Password, SignInButton, Language, OtherLanguage, Continue string
	// ErrorTitle leads the title of a page that shows an error.
	ErrorTitle                                                                                              string
	BadCredentials, Expired, MustChange, TryLater, Throttled, CSRF, BadService, BadServiceHead, OIDCMissing string
	FormTooLarge, FormUnreadable                                                                            string
	// PasswordReplaced: the password was changed while the person signed
	// in with the previous one (PASSWORD_CHANGED_DURING_LOGIN).
	PasswordReplaced string
	// AccountChanged: the account was locked or disabled while the person
	// signed in (ACCOUNT_CHANGED_DURING_LOGIN).
	AccountChanged                                                                                        string
	LoggedOut, LoggedOutHead, SignedIn, SignedInHead, SignOut, LevelHead, LevelPassword, ErrorHead        string
	PortalHead, SignedInAs, YourApps, NoApps, Enter, AccountIn, LinkHead, LinkIntro, Account, AppPassword string
	LinkButton, LinkDone, LinkRefused, LinkElsewhere, LinkAlready, LinkUnavailable, LinkBad               string
	LinkNoIDNumber, LinkNotSupported, LinkCSRF                                                            string
	ChangePassword, CurrentPassword, NewPassword, ConfirmPassword, ChangeButton, PasswordMismatch         string
	PasswordChanged, PasswordChangedSignIn, VerificationFailed, PolicyFailed, CannotChange, Portal        string
	// PasswordElsewhere: a person homed at another centre changes their
	// password there (the centre's name follows, when known).
	PasswordElsewhere                                                              string
	BackToApp, AccessDeniedHead, AccessDenied, AccessNoAccount, AccessNoPermission string
	// certificate login (authentication level 2)
	CertSignIn, CertOr, CertNone, CertNotRegistered, CertExpired, CertLocked, CertDisabled, CertPasswordOnly string
	// The USB key sign-in (a signed challenge, usbkey.go).
	USBKeySignIn, USBKeyMissing, USBKeyFailed, USBKeyRetry, USBKeySignature, USBKeyUntrusted, USBKeyRevoked string
	CertOtherPerson, OtherPerson                                                                            string
	// A certificate the browser presented and the server did not accept
	// (x509cert.Rejection): expired (%s: when), not yet valid (%s: from
	// when), of a CA this server does not trust, or otherwise unusable.
	CertRejExpired, CertRejNotYet, CertRejUnknownCA, CertRejInvalid, CertRejRevoked string
	// What to do instead: on a page with the password form, and for an
	// application that needs level 2.
	CertRejPassword, CertRejLevel string
	LevelNeedCert, LevelStepUp    string
	// LevelCertOnly: an application only a certificate login reaches, and
	// the browser presented none.
	LevelCertOnly string
	// My profile
	ProfileHead, DisplayName, Organisation, IDTypeLabel, IDNumberLabel, PhoneLabel, EmailLabel, NewPhoneLabel   string
	PasswordChangedLabel, PasswordExpiresLabel, Never, NotRecorded, IDResident, IDPassport, IDMilitary, IDOther string
	IDUSCC, IDOrgCode                                                                                           string
	// The account's type on "My profile" (ADR 0039), and a unit's labels.
	AccountTypeLabel, AccountPerson, AccountUnit, UnitNameLabel, UnitCodeLabel                              string
	ProfileAdminFields, ProfileAdminFieldsName, ProfileEditHead, PhoneHint, ProfilePasswordHint, SaveButton string
	ProfileNoPassword                                                                                       string
	ProfileSaved, ProfileNothing, ProfileNeedPassword, ProfileWrongPassword, ProfileCSRF, ProfileBad        string
	ProfileBadEmail, ProfileBadPhone, ProfileBadName, ProfileNotYours, ProfileElsewhere                     string
	// authenticator app (TOTP): the login's second page and the set-up
	OTPHead, OTPIntro, OTPCodeLabel, OTPButton, OTPWrong, OTPExpired                   string
	TOTPHead, TOTPSinceLabel, TOTPEnrolledNote, TOTPNone, TOTPSetUp, TOTPScan, TOTPKey string
	TOTPQRLabel, TOTPCodeLabel, TOTPRemove, TOTPRemoveHint, TOTPSaved, TOTPRemoved     string
	TOTPCodeWrong, TOTPEnrolExpired, TOTPChanged, TOTPPasswordHint                     string
	// TOTPAlready: the set-up page opened with an app set up already.
	TOTPAlready                       string
	TwoFactorLink, LevelTwoFactor     string
	PasswordOTPLabel, PasswordNeedOTP string
	// fingerprint sign-in (finger.go)
	FingerLink, FingerIntro, FingerButton, FingerLevelTwo, FingerNeedPassword, FingerFailed  string
	FingerPasswordFailed, FingerNone, FingerUnreadable, FingerOff, FingerAgentDown, FingerJS string
	FingerUsePassword                                                                        string
	// external authenticators (external.go): ExternalLink has %s for the
	// authenticator's label
	ExternalLink, ExternalIntro, ExternalCredential, ExternalButton, ExternalFailed string
	ExternalNone, ExternalNeedPassword, ExternalUnavailable, ExternalOff            string
	// sign-in across centres (peer.go): %s is the peer's name
	PeerLink, PeerNotSignedIn, PeerInvalid, PeerExpired, PeerReplayed, PeerAudience, PeerUnknown string
	PeerAccount, PeerLevel, PeerLogout, PeerUnavailable, PeerOwnPassword, PeerNotFresh           string
	// The person's own level (identity's min_auth_level) refused the
	// login after the right password or finger: two factors (and they
	// have no authenticator app), or a certificate only.
	PersonLevelTwoFactor, PersonLevelCert string
	// Windows domain (Kerberos, SPNEGO) sign-in (kerberos.go): the ticket
	// was not accepted (bad, expired, replayed, for another server), its
	// realm is not accepted, no UIAS account has the mapped name, the
	// account is locked, disabled or password-only, another person is
	// signed in, and an application that needs level 2.
	KerberosFailed, KerberosRealm, KerberosUnknown, KerberosLocked, KerberosDisabled string
	KerberosPasswordOnly, KerberosOtherPerson, KerberosLevel, KerberosUnavailable    string
	// OpenID Connect consent (consent.go) and "My applications" on the
	// profile page.
	ConsentHead, ConsentIntro, ConsentUntil, ConsentRevokeHint, ConsentAllow, ConsentDeny, ConsentCSRF, Days string
	ScopeOpenID, ScopeProfile, ScopeGroups                                                                   string
	// ScopeCAS: the consent to the application's CAS (and ssoAuthService)
	// services, as "My applications" lists it (review sec31c L1).
	ScopeCAS string
	// What a CAS service's consent page lists: the attributes its release
	// policy lets it receive (casReleased), in plain words.
	AttrUserID, AttrLogin, AttrName, AttrOrgID, AttrOrgName, AttrAppAccount, AttrGroups                 string
	AttrRoles, AttrPermissions, AttrAuthLevel, AttrSignIn, AttrMasked, AttrLegacyPassword, AttrUserType string
	MyAppsHead, MyAppsNone, MyAppsUnavailable, MyAppScope, MyAppSince, MyAppUntil, MyAppSignedIn        string
	MyAppRemove, MyAppRemoveHead, MyAppRemoveLink, MyAppRemoveTokens, MyAppRemoveConfirm, MyAppRemoved  string
	MyAppNotFound, Cancel                                                                               string
}

var languages = map[string]texts{
	"en": {
		Title: "UIAS sign-in", ErrorTitle: "Error", SignIn: "Sign in", SigningInTo: "You are signing in to", Username: "Login name",
		Password: "Password", SignInButton: "Sign in", Language: "Language", OtherLanguage: "中文", Continue: "Continue",
		BadCredentials:   "The login name or password is not correct.",
		Expired:          "Your password has expired. Choose a new one to continue.",
		MustChange:       "You must change your password before you continue.",
		TryLater:         "The sign-in service is busy or unavailable. Please try again in a moment.",
		Throttled:        "Too many attempts from your network. Please wait a moment and try again.",
		PasswordReplaced: "Your password was changed while you were signing in. Sign in with the new password.",
		AccountChanged:   "Your account was locked or disabled while you were signing in. Contact your administrator.",
		CSRF:             "Your sign-in form expired. Please sign in again.",
		FormTooLarge:     "The form sent is too large to be read. Send the form of this page, without attachments.",
		FormUnreadable:   "The form sent could not be read. Send the form of this page again.",
		BadService:       "The application you came from is not registered to use single sign-on. You were not sent back to it. Contact the application's administrator.",
		OIDCMissing:      "The application's sign-in request names no client_id or redirect_uri, or names one twice. Contact the application's administrator.",
		BadServiceHead:   "Application not authorised",
		LoggedOut:        "You have signed out of every application of this session.", LoggedOutHead: "Signed out",
		SignedIn: "You are signed in. You can now open your applications without typing your password again.", SignedInHead: "Signed in",
		SignOut:       "Sign out",
		LevelHead:     "A stronger sign-in is required",
		LevelPassword: "This application requires a certificate or another strong sign-in (level 2). Your account can sign in with a password only, so it cannot enter this application.",
		ErrorHead:     "Sign-in error",
		PortalHead:    "Your applications", SignedInAs: "Signed in as", YourApps: "Applications you can enter",
		NoApps: "No application is linked to your account yet.", Enter: "Enter", AccountIn: "account",
		LinkHead: "Link an account you already have", LinkIntro: "Give your account in the application; the application confirms it belongs to you.",
		Account: "Account in the application", AppPassword: "Password in the application", LinkButton: "Link account",
		LinkDone:         "The account is linked. You can now enter the application from this page.",
		LinkRefused:      "The application did not confirm that this account is yours.",
		LinkElsewhere:    "This account is already linked to another person.",
		LinkAlready:      "You are already linked to another account of this application. Ask your administrator to remove that link first.",
		LinkUnavailable:  "The application does not answer. Try again later.",
		LinkBad:          "Enter the account name (and, for this application, its password).",
		LinkNoIDNumber:   "Your identity document number is not recorded, and the application confirms accounts by it: ask your administrator to record it.",
		LinkNotSupported: "This application does not take part in account linking.",
		LinkCSRF:         "This form expired. Please link the account again.",
		ChangePassword:   "Change password", CurrentPassword: "Current password", NewPassword: "New password",
		ConfirmPassword: "New password again", ChangeButton: "Change password",
		PasswordMismatch:      "The two new passwords are not the same.",
		PasswordChanged:       "Your password has been changed.",
		PasswordChangedSignIn: "Your password has been changed. Sign in with the new password.",
		VerificationFailed:    "The login name or current password is not correct.",
		PolicyFailed:          "The new password does not meet the password rules:",
		CannotChange:          "Your password can only be changed by an administrator.",
		PasswordElsewhere:     "Your account is managed by another data centre: change your password at its sign-in page, or ask your administrator. Your centre:",
		Portal:                "Your applications",
		BackToApp:             "Back to the application",
		AccessDeniedHead:      "Access to this application denied",
		AccessDenied:          "You are signed in, but you may not use this application.",
		AccessNoAccount:       "You have no account in it. Ask the application's administrator to give you one.",
		AccessNoPermission:    "You have not been granted access to it. Ask your administrator for the permission.",
		CertSignIn:            "Sign in with your certificate",
		USBKeySignIn:          "Sign in with your USB key",
		USBKeyMissing:         "The USB key's software is not installed or not running in this browser. Install it, insert the key, and try again, or sign in with your password.",
		USBKeyFailed:          "The USB key could not sign in",
		USBKeyRetry:           "The USB key's sign-in took too long or was already used. Try again.",
		USBKeySignature:       "The USB key's signature does not match its certificate. Try again, or ask your administrator.",
		USBKeyUntrusted:       "The certificate on your USB key is not issued by a certificate authority this site trusts.",
		USBKeyRevoked:         "The certificate on your USB key has been revoked. Ask for a new certificate.",
		CertOr:                "or sign in with your login name and password:",
		CertOtherPerson:       "You are signed in as %s, and this certificate belongs to someone else. Sign out first, then sign in with the certificate.",
		OtherPerson:           "You are signed in as %s. To sign in as someone else, sign out first.",
		CertNone:              "Your browser did not present a client certificate. Insert your certificate (USB key) or install it in your browser, then open this page again.",
		CertNotRegistered:     "This certificate is not registered to any account. Ask your administrator to register it for you.",
		CertExpired:           "Your certificate has expired or is not valid yet. Ask for a new certificate.",
		CertRejExpired:        "Your browser presented a certificate that expired on %s, so it cannot sign you in.",
		CertRejNotYet:         "Your browser presented a certificate that is valid only from %s, so it cannot sign you in yet.",
		CertRejUnknownCA:      "Your browser presented a certificate that was not issued by a certificate authority this service trusts, so it cannot sign you in (to choose another one, restart the browser).",
		CertRejInvalid:        "Your browser presented a certificate that cannot be used to sign in.",
		CertRejRevoked:        "Your browser presented a certificate that its certificate authority revoked on %s, so it cannot sign you in (to choose another one, restart the browser).",
		CertRejPassword:       "Sign in with your password, or ask for a new certificate.",
		CertRejLevel:          "This application requires signing in with a valid certificate (level 2): ask for a new certificate.",
		CertLocked:            "Your account is locked. Try again later or ask your administrator.",
		CertDisabled:          "Your account is disabled. Ask your administrator.",
		CertPasswordOnly:      "Your account may sign in with its password only, not with a certificate.",
		LevelNeedCert:         "This application requires signing in with a certificate (level 2). Your browser did not present a client certificate: insert your certificate (USB key) or install it in your browser, then open this page again. If you have set up an authenticator app, you may sign in with your password and its code instead.",
		LevelStepUp:           "This application requires signing in with a certificate (level 2). Sign in with your certificate to continue.",
		LevelCertOnly:         "This application accepts only a certificate sign-in. Your browser did not present a client certificate: insert your certificate (USB key) or install it in your browser, then open this page again.",
		ProfileHead:           "My profile", DisplayName: "Name", Organisation: "Organisation", IDTypeLabel: "ID type",
		IDNumberLabel: "ID number", PhoneLabel: "Mobile phone", EmailLabel: "E-mail", NewPhoneLabel: "New mobile phone",
		PasswordChangedLabel: "Password last changed", PasswordExpiresLabel: "Password expires", Never: "Never",
		NotRecorded: "Not recorded", IDResident: "Resident identity card", IDPassport: "Passport", IDMilitary: "Military ID",
		IDOther: "Other document", IDUSCC: "Unified social credit code", IDOrgCode: "Organisation code",
		AccountTypeLabel: "Account type", AccountPerson: "Person", AccountUnit: "Unit (organisation)",
		UnitNameLabel: "Unit name", UnitCodeLabel: "Unit code",
		ProfileAdminFields:     "Your login name, organisation and ID number can only be changed by your administrator.",
		ProfileAdminFieldsName: "Your login name, name, organisation and ID number can only be changed by your administrator.",
		ProfileEditHead:        "Change your contact details",
		PhoneHint:              "Leave this empty to keep your current number.",
		ProfilePasswordHint:    "To save the changes, enter your current password.",
		ProfileNoPassword:      "You sign in without a password, so these details cannot be confirmed and changed here: ask your administrator to change them.",
		SaveButton:             "Save changes",
		ProfileSaved:           "Your profile has been saved.",
		ProfileNothing:         "Nothing was changed. Change your e-mail or type a new mobile phone number, then save.",
		ProfileNeedPassword:    "Enter your current password to save the changes.",
		ProfileWrongPassword:   "The current password is not correct. Nothing was changed.",
		ProfileCSRF:            "This form expired. Please enter your changes again.",
		ProfileBad:             "Some of the details are not valid. Check them and try again.",
		ProfileBadEmail:        "The e-mail address is not valid. Write it like name@example.com.",
		ProfileBadPhone:        "The mobile phone number is not valid. Use digits only, with '-' between groups and an optional '+' at the start.",
		ProfileBadName:         "Enter your name (at most 256 characters).",
		ProfileNotYours:        "Only your administrator can change this detail.",
		ProfileElsewhere:       "Your account is managed by another data centre. Change your profile at your own centre's sign-in page, or ask your administrator.",
		OTPHead:                "Authenticator app code",
		OTPIntro:               "Your password was accepted. Open your authenticator app and enter the 6-digit code it shows now.",
		OTPCodeLabel:           "6-digit code",
		OTPButton:              "Verify",
		OTPWrong:               "The code is wrong or was already used. Wait for the next code and enter it.",
		OTPExpired:             "Your sign-in has expired. Sign in again with your password.",
		TOTPHead:               "Authenticator app",
		TOTPSinceLabel:         "Set up on",
		TOTPEnrolledNote:       "When you sign in with your password you also enter the code your app shows.",
		TOTPNone:               "Not set up. With an authenticator app (Google Authenticator, Microsoft Authenticator, FreeOTP, ...) signing in with your password also needs a code from your phone.",
		TOTPSetUp:              "Set up an authenticator app",
		TOTPScan:               "Scan this QR code with your authenticator app, or type in the key below. Then enter the 6-digit code the app shows, and your current password.",
		TOTPKey:                "Key",
		TOTPQRLabel:            "QR code of the key for your authenticator app",
		TOTPCodeLabel:          "Code shown by the app",
		TOTPRemove:             "Remove the authenticator app",
		TOTPRemoveHint:         "Your current password and a code from the app confirm the removal (lost your phone? ask your administrator to reset it). You then sign in with your password alone.",
		TOTPSaved:              "Your authenticator app is set up. From now on signing in with your password also asks for its code.",
		TOTPRemoved:            "Your authenticator app was removed.",
		TOTPCodeWrong:          "The code does not match. Check that your phone's time is right and enter the code the app shows now.",
		TOTPEnrolExpired:       "The set-up has expired. Start again.",
		TOTPChanged:            "Your authenticator app was changed meanwhile (set up or removed elsewhere). Here is how it stands now.",
		TOTPAlready:            "An authenticator app is already set up. To set up another, remove this one first (below).",
		TOTPPasswordHint:       "Your current password confirms the change.",
		TwoFactorLink:          "Sign in with your password and authenticator app",
		PasswordOTPLabel:       "Authenticator app code (if you have set one up)",
		PasswordNeedOTP:        "You have set up an authenticator app: enter the code it shows too. Nothing was changed.",
		LevelTwoFactor:         "This application requires a strong sign-in (level 2): your password followed by the code of your authenticator app (or your certificate).",
		FingerLink:             "Sign in with your fingerprint",
		FingerIntro:            "Enter your login name, place your finger on the reader, then press the button below.",
		FingerButton:           "Read my finger and sign in",
		FingerLevelTwo:         "This application requires a strong sign-in (level 2): your finger and your password.",
		FingerNeedPassword:     "This application requires your password as well as your finger.",
		FingerFailed:           "The login name and finger do not match, or no finger is enrolled for you. Try again, or sign in with your password.",
		FingerPasswordFailed:   "The login name, finger or password is not correct.",
		FingerNone:             "No finger was read. Place your finger on the reader and try again.",
		FingerUnreadable:       "What the fingerprint reader sent could not be read. Try again; if it keeps failing, sign in with your password.",
		FingerOff:              "Fingerprint sign-in is not offered here. Sign in with your password.",
		FingerAgentDown:        "The fingerprint reader did not answer. Check that it is connected and its program is running.",
		FingerJS:               "Fingerprint sign-in needs JavaScript.",
		FingerUsePassword:      "Sign in with your password instead",
		ExternalLink:           "Sign in with %s",
		ExternalIntro:          "Enter your login name and what the sign-in method gives you (a code, or your device's answer), then sign in.",
		ExternalCredential:     "Code",
		ExternalButton:         "Sign in",
		ExternalFailed:         "The login name and the code do not match, or this sign-in method is not set up for you. Try again, or sign in with your password.",
		ExternalNone:           "Nothing was entered or received. Enter the code (or let your device answer) and try again.",
		ExternalNeedPassword:   "This application requires your password as well.",
		ExternalUnavailable:    "This sign-in method does not answer at the moment. Try again later, or sign in another way.",
		ExternalOff:            "This sign-in method is not offered here. Sign in with your password.",
		PeerLink:               "Signed in at %s? Continue without a password",
		PeerNotSignedIn:        "You are not signed in at %s (or your session there has ended). Sign in here.",
		PeerInvalid:            "The sign-in from the other centre could not be verified. Sign in here.",
		PeerExpired:            "The sign-in from the other centre took too long and has expired. Try again, or sign in here.",
		PeerReplayed:           "The sign-in from the other centre was used already (each is good once). Try again, or sign in here.",
		PeerAudience:           "The sign-in from the other centre was meant for another centre. Sign in here.",
		PeerUnknown:            "That centre is not one this centre trusts. Sign in here.",
		PeerAccount:            "Your account cannot sign in at this centre on the other centre's word (it is not known here, disabled or locked). Sign in here, or ask your administrator.",
		PeerLevel:              "Your sign-in at %s does not reach the level your account needs here. Sign in here with a stronger method.",
		PeerNotFresh:           "This application asks for a fresh or recent sign-in, which your sign-in at %s is not. Sign in here.",
		PeerOwnPassword:        "Your account signs in at this centre with its own password, not on %s's word (administrators, and people whose home centre is another). Sign in here.",
		PeerLogout:             "You signed in through %s: sign out there too",
		PeerUnavailable:        "The other centre cannot be reached now. Sign in here.",

		PersonLevelTwoFactor: "Your account must sign in with two factors or a certificate, and it has no authenticator app set up: " +
			"sign in with your certificate, or with your finger and your password, or ask your administrator to help you set up an authenticator app.",
		PersonLevelCert: "Your account may sign in with a certificate only: insert your certificate (USB key) or install it in your browser, " +
			"then sign in with it.",
		KerberosFailed:       "Your Windows sign-in could not be used here (the domain ticket was not accepted). Sign in with your login name and password.",
		KerberosRealm:        "Your Windows domain is not accepted by this server. Sign in with your login name and password.",
		KerberosUnavailable:  "Windows sign-in cannot be checked right now. Sign in with your login name and password, or try again later.",
		KerberosUnknown:      "Your Windows account has no matching account here. Sign in with your login name and password, or ask your administrator.",
		KerberosLocked:       "Your account is locked. Try again later or ask your administrator.",
		KerberosDisabled:     "Your account is disabled. Ask your administrator.",
		KerberosPasswordOnly: "Your account may sign in with its password only, not with your Windows sign-in.",
		KerberosOtherPerson:  "You are signed in as %s, and this computer's Windows sign-in is someone else's. Sign out first.",
		KerberosLevel:        "This application requires a stronger sign-in (level 2) than your Windows sign-in.",

		ConsentHead:        "Allow access?",
		ConsentIntro:       "asks for access to your account:",
		ConsentUntil:       "If you allow it, your consent is remembered until",
		ConsentRevokeHint:  "You can remove the access at any time under My applications on your profile page.",
		ConsentAllow:       "Allow",
		ConsentDeny:        "Deny",
		ConsentCSRF:        "This form expired. Please choose again.",
		Days:               "days",
		ScopeOpenID:        "Your user ID (to sign you in)",
		ScopeProfile:       "Your login name, name, organisation and account type",
		ScopeGroups:        "The groups you belong to",
		ScopeCAS:           "Single sign-on to the application, with the details about you that its consent page listed",
		AttrUserID:         "Your user ID",
		AttrLogin:          "Your login name",
		AttrName:           "Your name",
		AttrOrgID:          "Your organisation's code",
		AttrOrgName:        "Your organisation's name",
		AttrAppAccount:     "Your account in this application (if you linked one)",
		AttrGroups:         "The groups you belong to",
		AttrRoles:          "Your roles in this application",
		AttrPermissions:    "Your permissions in this application",
		AttrAuthLevel:      "How strongly you signed in (level 1 or 2)",
		AttrUserType:       "Whether your account is a person's or a unit's",
		AttrSignIn:         "When you signed in, and whether you just entered your credentials",
		AttrMasked:         "masked: only its first character is shown",
		AttrLegacyPassword: "Your password for this application (the one stored with your linked account)",
		MyAppsHead:         "My applications",
		MyAppsNone:         "You have not linked an account or given access to any application.",
		MyAppsUnavailable:  "Your applications cannot be shown right now. Try again later.",
		MyAppScope:         "Access granted:",
		MyAppSince:         "since",
		MyAppUntil:         "until",
		MyAppSignedIn:      "Last signed in:",
		MyAppRemove:        "Remove access",
		MyAppRemoveHead:    "Remove access?",
		MyAppRemoveLink:    "Your linked account is unlinked:",
		MyAppRemoveTokens:  "The application's access to your account ends now, and it must ask your consent again.",
		MyAppRemoveConfirm: "Remove access",
		MyAppRemoved:       "The application's access has been removed.",
		MyAppNotFound:      "You have given no access to that application, or it was removed already.",
		Cancel:             "Cancel",
	},
	"zh-CN": {
		Title: "UIAS 统一身份认证", ErrorTitle: "错误", SignIn: "登录", SigningInTo: "您正在登录", Username: "登录名",
		Password: "密码", SignInButton: "登录", Language: "语言", OtherLanguage: "English", Continue: "继续",
		BadCredentials:   "登录名或密码不正确。",
		Expired:          "您的密码已过期，请设置新密码后继续。",
		MustChange:       "继续之前必须修改密码。",
		TryLater:         "登录服务繁忙或暂不可用，请稍后再试。",
		Throttled:        "来自您网络的尝试次数过多，请稍候再试。",
		PasswordReplaced: "您的密码在登录过程中已被修改，请使用新密码登录。",
		AccountChanged:   "您的账号在登录过程中已被锁定或停用，请联系管理员。",
		CSRF:             "登录表单已过期，请重新登录。",
		FormTooLarge:     "提交的表单过大，无法读取。请只提交本页的表单。",
		FormUnreadable:   "提交的表单无法读取，请重新提交本页的表单。",
		BadService:       "您来自的应用未登记使用统一登录，系统没有将您跳转回该应用。请联系该应用的管理员。",
		OIDCMissing:      "应用的登录请求缺少 client_id 或 redirect_uri（或重复给出），请联系该应用的管理员。",
		BadServiceHead:   "应用未获授权",
		LoggedOut:        "您已退出本次会话中的所有应用。", LoggedOutHead: "已退出",
		SignedIn: "您已登录，现在打开您的应用无需再次输入密码。", SignedInHead: "已登录",
		SignOut:       "退出",
		LevelHead:     "需要更高强度的登录",
		LevelPassword: "该应用要求使用证书或其他强认证方式（二级）登录。您的账号只能使用密码登录，因此无法进入该应用。",
		ErrorHead:     "登录错误",
		PortalHead:    "我的应用", SignedInAs: "当前用户", YourApps: "您可以进入的应用",
		NoApps: "您的账号尚未关联任何应用。", Enter: "进入", AccountIn: "账号",
		LinkHead: "关联已有的应用账号", LinkIntro: "填写您在该应用中的账号，由该应用确认账号属于您。",
		Account: "应用账号", AppPassword: "应用密码", LinkButton: "关联账号",
		LinkDone:         "账号已关联，现在可以从本页进入该应用。",
		LinkRefused:      "该应用未确认此账号属于您。",
		LinkElsewhere:    "该账号已关联到其他人。",
		LinkAlready:      "您已关联该应用的另一个账号。请先联系管理员解除该关联。",
		LinkUnavailable:  "该应用没有响应，请稍后再试。",
		LinkBad:          "请填写账号（该应用还需要填写密码）。",
		LinkNoIDNumber:   "系统中未登记您的证件号码，而该应用凭证件号码确认账号：请联系管理员登记。",
		LinkNotSupported: "该应用不支持账号关联。",
		LinkCSRF:         "表单已过期，请重新关联账号。",
		ChangePassword:   "修改密码", CurrentPassword: "当前密码", NewPassword: "新密码",
		ConfirmPassword: "再次输入新密码", ChangeButton: "修改密码",
		PasswordMismatch:      "两次输入的新密码不一致。",
		PasswordChanged:       "密码已修改。",
		PasswordChangedSignIn: "密码已修改，请使用新密码登录。",
		VerificationFailed:    "登录名或当前密码不正确。",
		PolicyFailed:          "新密码不符合密码规则：",
		CannotChange:          "您的密码只能由管理员修改。",
		PasswordElsewhere:     "您的账号由另一个数据中心管理：请在该中心的登录页修改密码，或联系管理员。您所属的中心：",
		Portal:                "我的应用",
		BackToApp:             "返回应用系统",
		AccessDeniedHead:      "无权访问该应用",
		AccessDenied:          "您已登录，但无权使用该应用。",
		AccessNoAccount:       "您在该应用中没有账号，请联系该应用的管理员为您开通。",
		AccessNoPermission:    "您未被授予使用该应用的权限，请联系管理员申请。",
		CertSignIn:            "使用数字证书登录",
		USBKeySignIn:          "使用USB Key登录",
		USBKeyMissing:         "本浏览器中没有安装或没有运行USB Key的控件。请安装控件并插入USB Key后重试，或使用密码登录。",
		USBKeyFailed:          "USB Key未能完成登录",
		USBKeyRetry:           "USB Key登录超时或已被使用，请重试。",
		USBKeySignature:       "USB Key的签名与其证书不符。请重试，或联系管理员。",
		USBKeyUntrusted:       "USB Key中的证书不是本站信任的证书机构签发的。",
		USBKeyRevoked:         "USB Key中的证书已被吊销。请申请新的证书。",
		CertOr:                "或者使用登录名和密码登录：",
		CertOtherPerson:       "您当前以 %s 的身份登录，而此证书属于其他人。请先退出登录，再使用该证书登录。",
		OtherPerson:           "您当前以 %s 的身份登录。如需以其他身份登录，请先退出登录。",
		CertNone:              "您的浏览器没有提供客户端证书。请插入您的证书（USB Key）或在浏览器中安装证书，然后重新打开本页。",
		CertNotRegistered:     "该证书没有登记到任何账号。请联系管理员为您登记。",
		CertExpired:           "您的证书已过期或尚未生效。请申请新的证书。",
		CertRejExpired:        "您的浏览器提供的证书已于 %s 过期，无法用于登录。",
		CertRejNotYet:         "您的浏览器提供的证书自 %s 起才生效，暂时无法用于登录。",
		CertRejUnknownCA:      "您的浏览器提供的证书不是由本系统信任的证书机构签发的，无法用于登录（如需选择其他证书，请重新启动浏览器）。",
		CertRejInvalid:        "您的浏览器提供的证书无法用于登录。",
		CertRejRevoked:        "您的浏览器提供的证书已于 %s 被证书机构吊销，无法用于登录（如需选择其他证书，请重新启动浏览器）。",
		CertRejPassword:       "请使用密码登录，或申请新的证书。",
		CertRejLevel:          "该应用要求使用有效的数字证书（二级）登录：请申请新的证书。",
		CertLocked:            "您的账号已被锁定。请稍后再试或联系管理员。",
		CertDisabled:          "您的账号已被停用。请联系管理员。",
		CertPasswordOnly:      "您的账号只能使用密码登录，不能使用证书登录。",
		LevelNeedCert:         "该应用要求使用数字证书（二级）登录。您的浏览器没有提供客户端证书：请插入您的证书（USB Key）或在浏览器中安装证书，然后重新打开本页。如已设置动态口令，也可使用密码和动态口令登录。",
		LevelStepUp:           "该应用要求使用数字证书（二级）登录。请使用您的证书登录后继续。",
		LevelCertOnly:         "该应用仅接受数字证书登录。您的浏览器没有提供客户端证书：请插入您的证书（USB Key）或在浏览器中安装证书，然后重新打开本页。",
		ProfileHead:           "我的资料", DisplayName: "姓名", Organisation: "所属单位", IDTypeLabel: "证件类型",
		IDNumberLabel: "证件号码", PhoneLabel: "手机号码", EmailLabel: "电子邮箱", NewPhoneLabel: "新手机号码",
		PasswordChangedLabel: "密码上次修改时间", PasswordExpiresLabel: "密码到期时间", Never: "永不过期",
		NotRecorded: "未登记", IDResident: "居民身份证", IDPassport: "护照", IDMilitary: "军官证",
		IDOther: "其他证件", IDUSCC: "统一社会信用代码", IDOrgCode: "组织机构代码",
		AccountTypeLabel: "账号类型", AccountPerson: "个人", AccountUnit: "单位",
		UnitNameLabel: "单位名称", UnitCodeLabel: "单位代码",
		ProfileAdminFields:     "登录名、所属单位和证件号码只能由管理员修改。",
		ProfileAdminFieldsName: "登录名、姓名、所属单位和证件号码只能由管理员修改。",
		ProfileEditHead:        "修改联系方式",
		PhoneHint:              "不修改手机号码请留空。",
		ProfilePasswordHint:    "保存修改前，请输入您的当前密码。",
		ProfileNoPassword:      "您未设置登录密码，无法在此确认并修改这些信息，请联系管理员修改。",
		SaveButton:             "保存修改",
		ProfileSaved:           "您的资料已保存。",
		ProfileNothing:         "没有任何修改。请修改电子邮箱或填写新的手机号码后再保存。",
		ProfileNeedPassword:    "请输入当前密码以保存修改。",
		ProfileWrongPassword:   "当前密码不正确，资料未修改。",
		ProfileCSRF:            "表单已过期，请重新填写修改内容。",
		ProfileBad:             "部分资料格式不正确，请检查后重试。",
		ProfileBadEmail:        "电子邮箱格式不正确，请按 name@example.com 的格式填写。",
		ProfileBadPhone:        "手机号码格式不正确，只能包含数字、分隔用的“-”以及开头的“+”。",
		ProfileBadName:         "请填写姓名（不超过 256 个字符）。",
		ProfileNotYours:        "该项资料只能由管理员修改。",
		ProfileElsewhere:       "您的账号由另一个数据中心管理。请在您所属中心的登录页修改资料，或联系管理员。",
		OTPHead:                "动态口令",
		OTPIntro:               "密码正确。请打开您的身份验证器应用，输入其当前显示的 6 位动态口令。",
		OTPCodeLabel:           "6 位动态口令",
		OTPButton:              "验证",
		OTPWrong:               "动态口令错误或已被使用。请等待下一个口令后输入。",
		OTPExpired:             "登录已超时，请重新输入密码登录。",
		TOTPHead:               "动态口令",
		TOTPSinceLabel:         "设置时间",
		TOTPEnrolledNote:       "使用密码登录时，还需输入应用显示的动态口令。",
		TOTPNone:               "尚未设置。设置身份验证器应用（如 Google Authenticator、Microsoft Authenticator、FreeOTP）后，使用密码登录时还需输入手机上的动态口令。",
		TOTPSetUp:              "设置动态口令",
		TOTPScan:               "请用身份验证器应用扫描下面的二维码，或手动输入密钥。然后输入应用显示的 6 位动态口令和您的当前密码。",
		TOTPKey:                "密钥",
		TOTPQRLabel:            "身份验证器应用的密钥二维码",
		TOTPCodeLabel:          "应用显示的动态口令",
		TOTPRemove:             "删除动态口令",
		TOTPRemoveHint:         "请输入当前密码和应用显示的动态口令以确认删除（手机丢失请联系管理员重置）。删除后仅使用密码登录。",
		TOTPSaved:              "动态口令已设置。今后使用密码登录时还需输入动态口令。",
		TOTPRemoved:            "动态口令已删除。",
		TOTPCodeWrong:          "动态口令不匹配。请检查手机时间是否准确，并输入应用当前显示的口令。",
		TOTPEnrolExpired:       "设置已超时，请重新开始。",
		TOTPChanged:            "您的动态口令已在别处被设置或删除。以下是当前状态。",
		TOTPAlready:            "您已设置动态口令。如需更换，请先在下方删除当前的动态口令。",
		TOTPPasswordHint:       "需要输入当前密码确认修改。",
		TwoFactorLink:          "使用密码和动态口令登录",
		PasswordOTPLabel:       "动态口令（如已设置）",
		PasswordNeedOTP:        "您已设置动态口令：请同时输入应用显示的口令。未做任何修改。",
		LevelTwoFactor:         "该应用要求强认证（二级）登录：输入密码后还需输入身份验证器应用的动态口令（或使用数字证书）。",
		FingerLink:             "使用指纹登录",
		FingerIntro:            "请输入登录名，将手指放在指纹采集器上，然后点击下方按钮。",
		FingerButton:           "采集指纹并登录",
		FingerLevelTwo:         "该应用要求强认证（二级）登录：指纹加密码。",
		FingerNeedPassword:     "该应用除指纹外还需要输入密码。",
		FingerFailed:           "登录名与指纹不匹配，或您尚未登记指纹。请重试，或使用密码登录。",
		FingerPasswordFailed:   "登录名、指纹或密码不正确。",
		FingerNone:             "未采集到指纹。请将手指放在采集器上重试。",
		FingerUnreadable:       "无法识别指纹采集器发送的数据。请重试；如仍失败，请使用密码登录。",
		FingerOff:              "本系统未开放指纹登录，请使用密码登录。",
		FingerAgentDown:        "指纹采集器无响应。请检查设备是否已连接、采集程序是否在运行。",
		FingerJS:               "指纹登录需要启用 JavaScript。",
		FingerUsePassword:      "改用密码登录",
		ExternalLink:           "使用%s登录",
		ExternalIntro:          "请输入登录名及该认证方式提供的内容（验证码或设备的应答），然后登录。",
		ExternalCredential:     "验证码",
		ExternalButton:         "登录",
		ExternalFailed:         "登录名与验证码不匹配，或您尚未开通该认证方式。请重试，或使用密码登录。",
		ExternalNone:           "未输入或未收到任何内容。请输入验证码（或让设备应答）后重试。",
		ExternalNeedPassword:   "该应用还需要输入密码。",
		ExternalUnavailable:    "该认证方式暂时无响应。请稍后重试，或使用其他方式登录。",
		ExternalOff:            "本系统未开放该认证方式，请使用密码登录。",
		PeerLink:               "已在%s登录？无需密码继续",
		PeerNotSignedIn:        "您尚未在%s登录（或该处的会话已结束）。请在此登录。",
		PeerInvalid:            "无法验证来自另一中心的登录。请在此登录。",
		PeerExpired:            "来自另一中心的登录已过期。请重试或在此登录。",
		PeerReplayed:           "来自另一中心的登录已被使用（每次只能使用一次）。请重试或在此登录。",
		PeerAudience:           "来自另一中心的登录不是发给本中心的。请在此登录。",
		PeerUnknown:            "该中心不是本中心信任的中心。请在此登录。",
		PeerAccount:            "您的账号无法凭另一中心的登录在本中心登录（本中心没有该账号，或账号已停用或锁定）。请在此登录或联系管理员。",
		PeerLevel:              "您在%s的登录未达到本中心对您账号要求的级别。请在此使用更强的方式登录。",
		PeerNotFresh:           "该应用要求重新或近期登录，您在%s的登录不满足。请在此登录。",
		PeerOwnPassword:        "您的账号须在本中心使用自己的密码登录，不能凭%s的登录进入（管理员，以及归属其他中心的人员）。请在此登录。",
		PeerLogout:             "您是通过%s登录的：也在该处退出",
		PeerUnavailable:        "目前无法连接另一中心。请在此登录。",

		PersonLevelTwoFactor: "您的账号要求双因素或数字证书登录，且尚未设置身份验证器应用：请使用数字证书登录，或使用指纹加密码登录，或联系管理员协助设置身份验证器应用。",
		PersonLevelCert:      "您的账号只能使用数字证书登录：请插入您的证书（USB Key）或在浏览器中安装证书后，使用证书登录。",
		KerberosFailed:       "无法使用您的 Windows 域登录（域票据未被接受）。请使用登录名和密码登录。",
		KerberosRealm:        "本系统不接受您所在的 Windows 域。请使用登录名和密码登录。",
		KerberosUnavailable:  "暂时无法校验 Windows 域登录。请使用登录名和密码登录，或稍后再试。",
		KerberosUnknown:      "您的 Windows 账号在本系统中没有对应的账号。请使用登录名和密码登录，或联系管理员。",
		KerberosLocked:       "您的账号已被锁定。请稍后再试或联系管理员。",
		KerberosDisabled:     "您的账号已被停用。请联系管理员。",
		KerberosPasswordOnly: "您的账号只能使用密码登录，不能使用 Windows 域登录。",
		KerberosOtherPerson:  "您当前以 %s 的身份登录，而本机的 Windows 域登录属于其他人。请先退出登录。",
		KerberosLevel:        "该应用要求比 Windows 域登录更高级别（二级）的登录方式。",

		ConsentHead:        "是否授权？",
		ConsentIntro:       "请求访问您的账号：",
		ConsentUntil:       "如您同意，本次授权的有效期至",
		ConsentRevokeHint:  "您可随时在个人资料页的“我的应用”中取消授权。",
		ConsentAllow:       "同意",
		ConsentDeny:        "拒绝",
		ConsentCSRF:        "表单已过期，请重新选择。",
		Days:               "天",
		ScopeOpenID:        "您的用户标识（用于登录）",
		ScopeProfile:       "您的登录名、姓名、所属单位和账号类型",
		ScopeGroups:        "您所属的用户组",
		ScopeCAS:           "单点登录该应用，并向其提供同意页所列的您的信息",
		AttrUserID:         "您的用户标识",
		AttrLogin:          "您的登录名",
		AttrName:           "您的姓名",
		AttrOrgID:          "您所属单位的代码",
		AttrOrgName:        "您所属单位的名称",
		AttrAppAccount:     "您在该应用中的账号（如已关联）",
		AttrGroups:         "您所属的用户组",
		AttrRoles:          "您在该应用中的角色",
		AttrPermissions:    "您在该应用中的权限",
		AttrAuthLevel:      "您本次登录的认证级别（1级或2级）",
		AttrUserType:       "您的账号是个人账号还是单位账号",
		AttrSignIn:         "您的登录时间，以及是否刚刚输入了凭据",
		AttrMasked:         "脱敏：仅显示第一个字",
		AttrLegacyPassword: "您在该应用中的密码（随关联账号保存的密码）",
		MyAppsHead:         "我的应用",
		MyAppsNone:         "您尚未关联任何应用账号，也未授权任何应用。",
		MyAppsUnavailable:  "暂时无法显示您的应用，请稍后再试。",
		MyAppScope:         "已授权：",
		MyAppSince:         "自",
		MyAppUntil:         "至",
		MyAppSignedIn:      "最近登录：",
		MyAppRemove:        "取消授权",
		MyAppRemoveHead:    "确认取消授权？",
		MyAppRemoveLink:    "解除关联的应用账号：",
		MyAppRemoveTokens:  "该应用对您账号的访问立即终止，下次使用需重新征得您的同意。",
		MyAppRemoveConfirm: "确认取消",
		MyAppRemoved:       "已取消该应用的访问授权。",
		MyAppNotFound:      "您未授权该应用，或授权已被取消。",
		Cancel:             "取消",
	},
}

// langCookie keeps the language chosen with the switch.
const langCookie = "uias_lang"

// language picks the page language: ?locale=, then the switch's cookie,
// then Accept-Language (pkg/pagelang).
func language(r *http.Request) string { return pagelang.Of(r, langCookie) }
