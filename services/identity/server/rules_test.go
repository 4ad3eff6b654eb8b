package server_test

import (
	"strings"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	validatev1 "github.com/uias/uias/proto/gen/uias/validate/v1"
)

// TestEveryRequestStringHasRules keeps the promise that handlers need not
// check strings: every string a request of the identity services can carry
// (fields, list items, map keys and values, in nested messages too) has
// protovalidate rules with a byte limit (or a format that implies one) and
// excludes control characters, unless it is a secret; every bytes field has
// a limit. UTF-8 is verified by protobuf decoding (edition default), which
// the file must not turn off.
func TestEveryRequestStringHasRules(t *testing.T) {
	file := identityv1.File_uias_identity_v1_identity_proto
	seen := map[protoreflect.FullName]bool{}
	services := file.Services()
	if services.Len() == 0 {
		t.Fatal("no services")
	}
	for i := range services.Len() {
		methods := services.Get(i).Methods()
		for j := range methods.Len() {
			checkMessage(t, methods.Get(j).Input(), seen)
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d request messages checked", len(seen))
	}
	if f := protodesc.ToFileDescriptorProto(file).GetOptions().GetFeatures(); f.GetUtf8Validation() == descriptorpb.FeatureSet_NONE {
		t.Error("identity.proto turns off UTF-8 verification")
	}
}

func checkMessage(t *testing.T, md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) {
	if seen[md.FullName()] {
		return
	}
	seen[md.FullName()] = true
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		where := string(fd.FullName())
		if protodesc.ToFieldDescriptorProto(fd).GetOptions().GetFeatures().GetUtf8Validation() == descriptorpb.FeatureSet_NONE {
			t.Errorf("%s: UTF-8 verification turned off", where)
		}
		rules, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
		secret := strings.Contains(string(fd.Name()), "password")
		switch {
		case fd.IsMap():
			if fd.MapKey().Kind() == protoreflect.StringKind {
				checkString(t, where+" (keys)", rules.GetMap().GetKeys(), secret)
			}
			checkValue(t, where+" (values)", fd.MapValue(), rules.GetMap().GetValues(), secret, seen)
		case fd.IsList():
			checkValue(t, where+" (items)", fd, rules.GetRepeated().GetItems(), secret, seen)
		default:
			checkValue(t, where, fd, rules, secret, seen)
		}
	}
}

func checkValue(t *testing.T, where string, fd protoreflect.FieldDescriptor, rules *validate.FieldRules, secret bool, seen map[protoreflect.FullName]bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		checkString(t, where, rules, secret)
	case protoreflect.BytesKind:
		if !rules.GetBytes().HasMaxLen() {
			t.Errorf("%s: bytes without bytes.max_len", where)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		checkMessage(t, fd.Message(), seen)
	}
}

func checkString(t *testing.T, where string, rules *validate.FieldRules, secret bool) {
	t.Helper()
	s := rules.GetString()
	code, _ := proto.GetExtension(s, validatev1.E_Code).(bool)
	name, _ := proto.GetExtension(s, validatev1.E_Name).(bool)
	text, _ := proto.GetExtension(s, validatev1.E_Text).(bool)
	if !s.HasMaxBytes() && !code && !name {
		t.Errorf("%s: string without a byte limit (string.max_bytes)", where)
	}
	if !secret && !text && !code && !name {
		t.Errorf("%s: string that may hold control characters (add string.(uias.validate.v1.text))", where)
	}
}

// BenchmarkValidateRequest is the cost of the request checks on typical
// requests (what every call pays before its handler).
func BenchmarkValidateRequest(b *testing.B) {
	reqs := map[string]proto.Message{
		"Authenticate": &identityv1.AuthenticateRequest{AppUserId: "acct-alice", Password: "Str0ng-Pass!42",
			AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD, ExtendInfo: map[string]string{"terminal": "T1", "branch": "0101"}},
		"GetUser": &identityv1.GetUserRequest{Id: "0193a5b2-7c1e-7d3f-9a4b-1c2d3e4f5a6b"},
		"CreateUser": &identityv1.CreateUserRequest{LoginName: "alice", DisplayName: "Alice Wang", OrgId: "org-1",
			IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: "11010519491231002X", Phone: "13812345678",
			Email: "alice@example.cn", Password: "Str0ng-Pass!42"},
	}
	for name, req := range reqs {
		b.Run(name, func(b *testing.B) {
			if err := grpcx.ValidateRequest(req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = grpcx.ValidateRequest(req)
			}
		})
	}
}
