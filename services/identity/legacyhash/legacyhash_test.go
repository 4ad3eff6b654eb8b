package legacyhash

import (
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

const pw = "Ocean-Pass-1"

// Known answers computed with Python's hashlib (OpenSSL, SM3 included),
// independently of this package.
var known = []struct {
	enc      string
	scheme   Scheme
	unsalted bool
}{
	{"$pbkdf2-sha256$i=1000$czRsdA$KJHI1Mh9Sx+5U20AjFqnhhJmdJv1FsEsnVBTXEwvWjY", PBKDF2, false},
	{"$pbkdf2-sha256$29000$AAECAwQFBgcICQoLDA0ODw$okNeH3VgbENyvsYmUwmfSyPigJBtSoDVMIbAs3OjD.0", PBKDF2, false},
	{"pbkdf2_sha256$1200$abcSalt$ZGkcre7NI685vwJ3RYOFpCRIgyE60/NMypv/7/ve5iM=", PBKDF2, false},
	{"{SHA}uYSvDMcT0dX/nnMR2vyT1vvNo8Q=", LDAP, true},
	{"{SSHA}ToCQ+Yy+XbHrrCMPC5gQGBLBShJzNGx0", LDAP, false},
	{"{SHA256}EN3Qt8wjBkj1oKxogBnovE1Mw9OeRNyhTczppcPMTVM=", LDAP, true},
	{"{SSHA256}AUoWoCLcmjrAkDrJiwWDzGknNHHOzOvlsOGT3mtZQcFzNGx0", LDAP, false},
	{"{MD5}iHRE7ThN0c3MJi9s+CPVFA==", LDAP, true},
	{"{smd5}HXyU7cZMfI0ir42ZJ7IR/XM0bHQ=", LDAP, false},
	{"{SM3}kUi6VT1ZI6mGvpohtZvWARy4rDjkWenS0MLrFXDz7wU=", LDAP, true},
	{"{SSM3}i2vqQe4n7SBPLm22hIvnTMw/2rapYyxLuidYdAUQt7VzNGx0", LDAP, false},
	{"$digest$md5$ps$abc$39ddaa1e8803de22688ecfaa8af5573c", Digest, false},
	{"$digest$sha1$sp$abc$388AD7B23E3684FAD87B90C778B53F9AA282ED82", Digest, false},
	{"$digest$sha256$ps$$10ddd0b7cc230648f5a0ac688019e8bc4d4cc3d39e44dca14dcce9a5c3cc4d53", Digest, true},
	{"$digest$sm3$sp$NaCl$bc972bd7b06cfa21f6b9dbbc0e446b1d2db86b653ab3ad0e8428a4cb0500b4f8", Digest, false},
}

func TestKnownAnswers(t *testing.T) {
	for _, k := range known {
		h, err := Parse(k.enc)
		if err != nil {
			t.Fatalf("%s: %v", k.enc, err)
		}
		if h.Scheme != k.scheme || h.Unsalted != k.unsalted {
			t.Errorf("%s: scheme %s unsalted %v, want %s %v", k.enc, h.Scheme, h.Unsalted, k.scheme, k.unsalted)
		}
		if ok, err := h.Verify(pw); !ok || err != nil {
			t.Errorf("%s: right password: %v %v", k.enc, ok, err)
		}
		for _, wrong := range []string{"ocean-Pass-1", "Ocean-Pass-", "", pw + " "} {
			if ok, err := h.Verify(wrong); ok || err != nil {
				t.Errorf("%s: wrong password %q: %v %v", k.enc, wrong, ok, err)
			}
		}
	}
}

func TestBcrypt(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// The same hash under each version tag PHP, OpenBSD and others write.
	for _, tag := range []string{"$2a$", "$2b$", "$2y$"} {
		enc := tag + string(b[4:])
		h, err := Parse(enc)
		if err != nil || h.Scheme != Bcrypt || !h.Slow {
			t.Fatalf("%s: %v %+v", tag, err, h)
		}
		if ok, err := h.Verify(pw); !ok || err != nil {
			t.Fatalf("%s right password: %v %v", tag, ok, err)
		}
		if ok, err := h.Verify("nope"); ok || err != nil {
			t.Fatalf("%s wrong password: %v %v", tag, ok, err)
		}
	}
}

func TestWrap(t *testing.T) {
	h, err := Parse("{MD5}iHRE7ThN0c3MJi9s+CPVFA==")
	if err != nil {
		t.Fatal(err)
	}
	in, ok := h.WrapInput()
	if !ok || in != "887444ed384dd1cdcc262f6cf823d514" {
		t.Fatalf("wrap input %q %v", in, ok)
	}
	w, err := Parse(Wrap("md5", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA"))
	if err != nil || w.Scheme != Wrapped || w.Alg != "md5" || !IsArgon2id(w.Inner) {
		t.Fatalf("wrapped: %v %+v", err, w)
	}
	// The wrapped input is computed from the password alone.
	if got := w.WrappedInput(pw); got != in {
		t.Fatalf("wrapped input %q, want %q", got, in)
	}
	if _, ok := mustParse(t, "{SSHA}ToCQ+Yy+XbHrrCMPC5gQGBLBShJzNGx0").WrapInput(); ok {
		t.Fatal("a salted hash is wrapped")
	}
}

func mustParse(t *testing.T, enc string) *Hash {
	t.Helper()
	h, err := Parse(enc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMalformed(t *testing.T) {
	for _, enc := range []string{
		"", "plain", "$argon2id$v=19$m=1,t=1,p=1$x$y", "$2a$", "$2c$10$xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"$pbkdf2-sha256$i=10$czRsdA$KJHI1Mh9Sx+5U20AjFqnhhJmdJv1FsEsnVBTXEwvWjY",       // too few rounds
		"$pbkdf2-sha256$i=99999999$czRsdA$KJHI1Mh9Sx+5U20AjFqnhhJmdJv1FsEsnVBTXEwvWjY", // too many
		"$pbkdf2-sha256$i=1000$$KJHI1Mh9Sx+5U20AjFqnhhJmdJv1FsEsnVBTXEwvWjY",           // no salt
		"$pbkdf2-sha256$i=1000$czRsdA$!!", "pbkdf2_sha256$1200$abcSalt", "pbkdf2_sha256$x$abc$ZGkc",
		"{SHA}", "{SHA}not base64!", "{SHA}iHRE7ThN0c3MJi9s+CPVFA==", "{SSHA}uYSvDMcT0dX/nnMR2vyT1vvNo8Q=", "{CRYPT}abc", "{SHA",
		"$digest$md4$ps$abc$39ddaa1e8803de22688ecfaa8af5573c", "$digest$md5$xx$abc$39ddaa1e8803de22688ecfaa8af5573c",
		"$digest$md5$ps$abc$39dd", "$digest$md5$ps$abc$zz", "$digest$md5$ps$abc",
		"$wrap-md5$bcrypt", "$wrap-md4$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", "$wrap-md5",
		"$NT$", "$NT$8846f7eaee8fb117ad06bdd830b7586", "$NT$8846f7eaee8fb117ad06bdd830b7586czz", "$NT$zz46f7eaee8fb117ad06bdd830b7586c",
		"$digest$nt$ps$$8846f7eaee8fb117ad06bdd830b7586c",
	} {
		if _, err := Parse(enc); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", enc, err)
		}
	}
}

// NT hashes (Active Directory, Samba): MD4 of the UTF-16LE password. The
// published values of "password" and of the empty password; upper or
// lower case hex; wrapped like the other unsalted digests.
func TestNTHash(t *testing.T) {
	for enc, password := range map[string]string{
		"$NT$8846f7eaee8fb117ad06bdd830b7586c": "password",
		"$NT$8846F7EAEE8FB117AD06BDD830B7586C": "password",
		"$NT$31d6cfe0d16ae931b73c59d7e0c089c0": "",
	} {
		h := mustParse(t, enc)
		if h.Scheme != NT || !h.Unsalted || h.Slow {
			t.Fatalf("%s: %+v", enc, h)
		}
		if ok, err := h.Verify(password); !ok || err != nil {
			t.Fatalf("%s: right password %v %v", enc, ok, err)
		}
		for _, wrong := range []string{"Password", "password ", "passwor", "x"} {
			if ok, err := h.Verify(wrong); ok || err != nil {
				t.Fatalf("%s: wrong password %q: %v %v", enc, wrong, ok, err)
			}
		}
	}
	h := mustParse(t, "$NT$8846f7eaee8fb117ad06bdd830b7586c")
	in, ok := h.WrapInput()
	if !ok || in != "8846f7eaee8fb117ad06bdd830b7586c" {
		t.Fatalf("wrap input %q %v", in, ok)
	}
	w := mustParse(t, Wrap("nt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA"))
	if w.Scheme != Wrapped || w.Alg != "nt" || w.WrappedInput("password") != in {
		t.Fatalf("wrapped: %+v %q", w, w.WrappedInput("password"))
	}
	// Beyond ASCII the password is UTF-16LE, not UTF-8: the two
	// encodings of one password give different hashes.
	if string(input(ntAlg, "密码")) != "\xc6\x5b\x01\x78" { // Python: "密码".encode("utf-16le")
		t.Fatalf("UTF-16LE of 密码: % x", input(ntAlg, "密码"))
	}
}
