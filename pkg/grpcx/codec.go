package grpcx

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Undecodable requests.
//
// grpc-go decodes a request before any interceptor runs (inside the
// generated handler, or in RecvMsg for streams) and answers a codec error
// itself, as INTERNAL "grpc: failed to unmarshal the received message",
// whatever error the codec returned. A request a client garbled is the
// client's fault: it must answer INVALID_ARGUMENT with legacy code -5, like
// any other bad request. So the server codec (requestCodec, installed with
// grpc.ForceServerCodecV2, so clients in the same process keep the standard
// codec) does not fail: it empties the message and marks it undecodable, and
// the validation interceptor, which sees every request before its handler,
// answers for it (undecodableError).
//
// The mark travels in the message itself, as an unknown field that carries a
// per-process random tag: nothing is left behind when a call ends early (an
// authentication failure, a second request message on a unary call), and a
// client cannot forge the mark.

// markField is the field number of the mark (the largest valid one).
const markField protowire.Number = protowire.MaxValidNumber

// markTag starts every mark's payload; the rest of the payload is the proto
// path of the string field that was not valid UTF-8, if that was the failure.
var markTag = func() []byte {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go >= 1.24)
	return b
}()

// requestCodec is the standard proto codec of grpc-go, except for what
// Unmarshal does with a message it cannot decode (see above).
type requestCodec struct {
	encoding.CodecV2
}

func newRequestCodec() requestCodec {
	return requestCodec{CodecV2: encoding.GetCodecV2(protoenc.Name)}
}

// Marshal encodes v; an encodedResponse (a signed answer, SignedBodies) is
// sent as it was encoded and signed.
func (c requestCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(encodedResponse); ok {
		return mem.BufferSlice{mem.SliceBuffer(e.b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal decodes data into v. When that fails and v is a proto message,
// v is reset and marked undecodable, and nil is returned.
//
// For a signed call (SignedBodies), v is a digestTarget: the bytes are
// hashed first, then decoded into its message.
func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if t, ok := v.(digestTarget); ok {
		t.d.sum = hashBuffers(data)
		v = t.msg
	}
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	field := invalidUTF8Field(m.ProtoReflect().Descriptor(), data.Materialize(), 0)
	markUndecodable(m, field)
	return nil
}

// markUndecodable resets m and marks it undecodable (field: the path of the
// string field that was not valid UTF-8, if that was the failure).
func markUndecodable(m proto.Message, field string) {
	proto.Reset(m)
	payload := append(append([]byte(nil), markTag...), field...)
	mark := protowire.AppendBytes(protowire.AppendTag(nil, markField, protowire.BytesType), payload)
	m.ProtoReflect().SetUnknown(mark)
}

// undecodableError returns the bad-request error for m when the server codec
// marked it undecodable, nil otherwise.
func undecodableError(m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil
	}
	r := msg.ProtoReflect()
	u := r.GetUnknown()
	if len(u) == 0 {
		return nil
	}
	for len(u) > 0 {
		num, typ, n := protowire.ConsumeTag(u)
		if n < 0 {
			return nil
		}
		u = u[n:]
		if num == markField && typ == protowire.BytesType {
			payload, n := protowire.ConsumeBytes(u)
			if n < 0 {
				return nil
			}
			if field, ok := bytes.CutPrefix(payload, markTag); ok {
				if len(field) > 0 {
					return badRequest(string(field), string(field)+" is not valid UTF-8")
				}
				return badRequest("", fmt.Sprintf("the request is not a valid %s message (it could not be decoded)", r.Descriptor().FullName()))
			}
		}
		n = protowire.ConsumeFieldValue(num, typ, u)
		if n < 0 {
			return nil
		}
		u = u[n:]
	}
	return nil
}

// maxUTF8Depth bounds the search for an invalid string in nested messages.
const maxUTF8Depth = 32

// invalidUTF8Field returns the path of the first string field (of md, or of
// a message within it) whose value in the wire-format bytes b is not valid
// UTF-8: proto field names joined by '.'; a map field is named as a whole
// (e.g. "extend_info"). It returns "" when there is none or b is malformed.
func invalidUTF8Field(md protoreflect.MessageDescriptor, b []byte, depth int) string {
	if depth > maxUTF8Depth {
		return ""
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return ""
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if fd == nil {
			continue
		}
		switch fd.Kind() {
		case protoreflect.StringKind:
			if !utf8.Valid(v) {
				return string(fd.Name())
			}
		case protoreflect.MessageKind:
			if sub := invalidUTF8Field(fd.Message(), v, depth+1); sub != "" {
				if fd.IsMap() {
					return string(fd.Name())
				}
				return string(fd.Name()) + "." + sub
			}
		}
	}
	return ""
}

// invalidUTF8In is invalidUTF8Field for a message already in memory (an
// in-process call's request, which no codec checked): the path of its first
// set string field (or of a message within it) that is not valid UTF-8, ""
// when there is none.
func invalidUTF8In(m protoreflect.Message, depth int) string {
	if depth > maxUTF8Depth {
		return ""
	}
	var bad string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			kd, vd := fd.MapKey(), fd.MapValue()
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if (kd.Kind() == protoreflect.StringKind && !utf8.ValidString(k.String())) ||
					(vd.Kind() == protoreflect.StringKind && !utf8.ValidString(mv.String())) ||
					(vd.Kind() == protoreflect.MessageKind && invalidUTF8In(mv.Message(), depth+1) != "") {
					bad = string(fd.Name())
				}
				return bad == ""
			})
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && bad == ""; i++ {
				bad = invalidUTF8Item(fd, l.Get(i), depth)
			}
		default:
			bad = invalidUTF8Item(fd, v, depth)
		}
		return bad == ""
	})
	return bad
}

// invalidUTF8Item checks one value of field fd (a singular value or a list
// item).
func invalidUTF8Item(fd protoreflect.FieldDescriptor, v protoreflect.Value, depth int) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return string(fd.Name())
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if sub := invalidUTF8In(v.Message(), depth+1); sub != "" {
			return string(fd.Name()) + "." + sub
		}
	}
	return ""
}
