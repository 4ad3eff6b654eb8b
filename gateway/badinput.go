package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
)

// A request body, path or query parameter that does not fit the request
// message is refused by grpc-gateway or protojson with their own words
// ("proto: (line 1:17): invalid value for string field appUserId: 123",
// "strconv.ParseInt: parsing ..."). The edge answers in its own: what is
// wrong, naming the field by its proto (snake_case) name, which also goes
// into the ErrorInfo metadata "field". Which input is at fault is found by
// trying the same library on one field at a time, so the libraries still
// decide what is accepted; only the words are ours.

// badInput is a caller mistake found in the request: the field's proto
// path (empty when no one field is at fault) and the message.
type badInput struct {
	field string
	msg   string
}

// maxElems bounds the elements of one list or map looked at one by one to
// find the bad one, so a large refused body costs a bounded extra effort.
const maxElems = 1000

// maxShown bounds a name chosen by the caller (an unknown field or query
// parameter) repeated in a message.
const maxShown = 64

// shown is s for a message: quoted, cut to maxShown bytes.
func shown(s string) string {
	if len(s) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strconv.Quote(s)
}

// metaName is s as ErrorInfo field metadata: only a plain short name.
func metaName(s string) string {
	if s == "" || len(s) > maxShown {
		return ""
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || r == '-' || r == '[' || r == ']' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return ""
		}
	}
	return s
}

// ---- request bodies ----

// decodeBody reads one JSON value from d and unmarshals it into v (a
// request message) as runtime.JSONPb does. A body that does not fit comes
// back as *badInput.
func decodeBody(d *json.Decoder, typeOK bool, unmarshal func([]byte) error) error {
	var raw json.RawMessage
	if err := d.Decode(&raw); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return err // no body: an empty request, as grpc-gateway has it
		case !typeOK && (errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)):
			return errNotJSON
		case errors.As(err, &se):
			return &badInput{msg: fmt.Sprintf("not valid JSON (error at byte %d)", se.Offset)}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &badInput{msg: "not valid JSON: it ends before the JSON value is complete"}
		}
		return err // a read error (body too large, connection): not the JSON's fault
	}
	if !typeOK {
		return errNotJSON
	}
	return unmarshal(raw)
}

// errNotJSON: a request body whose Content-Type is not JSON.
var errNotJSON = errors.New("the request body is not JSON")

// unmarshalBody decodes raw into v, or says in the edge's words what does
// not fit (the field at fault).
func unmarshalBody(uo protojson.UnmarshalOptions, raw []byte, v proto.Message) error {
	if err := uo.Unmarshal(raw, v); err != nil {
		b := jsonProblem(uo, v.ProtoReflect().Descriptor(), raw, "", "")
		if b == nil {
			b = &badInput{msg: "it does not fit the request: a field may be given twice (by its proto and its JSON name) " +
				"or two alternatives of a oneof together"}
		}
		return b
	}
	return nil
}

func (b *badInput) Error() string { return b.msg }

// jsonMember is one member of a JSON object, in document order.
type jsonMember struct {
	key string
	val json.RawMessage
}

// jsonObject splits raw into its members; ok is false when raw is not a
// JSON object.
func jsonObject(raw []byte) (members []jsonMember, ok bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, false
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, false
		}
		members = append(members, jsonMember{key: k, val: v})
	}
	return members, true
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// joinPath appends name to the proto path p.
func joinPath(p, name string) string {
	if p == "" {
		return name
	}
	return p + "." + name
}

// fits reports whether body unmarshals into a new md.
func fits(uo protojson.UnmarshalOptions, md protoreflect.MessageDescriptor, body []byte) bool {
	return uo.Unmarshal(body, dynamicpb.NewMessage(md)) == nil
}

// single is the JSON object {key: val}.
func single(key string, val []byte) []byte {
	k, _ := json.Marshal(key)
	return append(append(append(append([]byte("{"), k...), ':'), val...), '}')
}

// jsonProblem finds what in raw (a JSON value for a message md at proto
// path fp, shown with list indexes and map keys as sp) protojson refuses;
// nil when it cannot tell. The field metadata is the proto path without
// indexes or keys, as the services' validation gives it.
func jsonProblem(uo protojson.UnmarshalOptions, md protoreflect.MessageDescriptor, raw []byte, fp, sp string) *badInput {
	members, ok := jsonObject(raw)
	if !ok {
		if sp == "" {
			return &badInput{msg: "it must be a JSON object"}
		}
		return &badInput{field: fp, msg: sp + " must be a JSON object"}
	}
	fields := md.Fields()
	seen := map[protoreflect.FieldNumber]bool{}
	oneofs := map[protoreflect.FullName]protoreflect.FieldDescriptor{}
	for _, m := range members {
		fd := fields.ByName(protoreflect.Name(m.key))
		if fd == nil {
			fd = fields.ByJSONName(m.key)
		}
		if fd == nil {
			return &badInput{field: metaName(joinPath(fp, m.key)), msg: "unknown field " + shown(joinPath(sp, m.key))}
		}
		ffp, fsp := joinPath(fp, string(fd.Name())), joinPath(sp, string(fd.Name()))
		if seen[fd.Number()] {
			return &badInput{field: ffp, msg: fsp + " is given twice"}
		}
		seen[fd.Number()] = true
		if of := fd.ContainingOneof(); of != nil && !of.IsSynthetic() && !isNull(m.val) {
			if other, ok := oneofs[of.FullName()]; ok {
				return &badInput{field: ffp, msg: fmt.Sprintf("%s and %s exclude each other: give only one", joinPath(sp, string(other.Name())), fsp)}
			}
			oneofs[of.FullName()] = fd
		}
		if fits(uo, md, single(m.key, m.val)) {
			continue
		}
		if b := fieldProblem(uo, md, fd, m.key, m.val, ffp, fsp); b != nil {
			return b
		}
		return &badInput{field: ffp, msg: fsp + " is not valid"}
	}
	return nil
}

// fieldProblem describes why val (given under key) does not fit the field
// fd of md (at fp, shown as sp).
func fieldProblem(uo protojson.UnmarshalOptions, md protoreflect.MessageDescriptor, fd protoreflect.FieldDescriptor, key string, val []byte, fp, sp string) *badInput {
	switch {
	case fd.IsList():
		var elems []json.RawMessage
		if json.Unmarshal(val, &elems) != nil {
			return &badInput{field: fp, msg: sp + " must be a JSON array"}
		}
		for i, e := range elems {
			if i == maxElems {
				break // the answer says only that the list is not valid
			}
			ep := fmt.Sprintf("%s[%d]", sp, i)
			if isNull(e) {
				return &badInput{field: fp, msg: ep + " must not be null"}
			}
			if !fits(uo, md, single(key, append(append([]byte("["), e...), ']'))) {
				return valueProblem(uo, fd, e, fp, ep)
			}
		}
	case fd.IsMap():
		members, ok := jsonObject(val)
		if !ok {
			return &badInput{field: fp, msg: sp + " must be a JSON object"}
		}
		for i, m := range members {
			if i == maxElems {
				break
			}
			one := single(key, single(m.key, m.val))
			if fits(uo, md, one) {
				continue
			}
			if !fits(uo, md, single(key, single(m.key, zeroJSON(fd.MapValue())))) {
				return &badInput{field: fp, msg: fmt.Sprintf("%s has the key %s, which is not %s", sp, shown(m.key), wants(fd.MapKey()))}
			}
			return valueProblem(uo, fd.MapValue(), m.val, fp, sp+"["+shown(m.key)+"]")
		}
	default:
		return valueProblem(uo, fd, val, fp, sp)
	}
	return nil
}

// zeroJSON is a JSON value any field of fd's kind accepts.
func zeroJSON(fd protoreflect.FieldDescriptor) []byte {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return []byte("null")
	case protoreflect.BoolKind:
		return []byte("false")
	case protoreflect.StringKind, protoreflect.BytesKind:
		return []byte(`""`)
	}
	return []byte("0")
}

// valueProblem describes one value (not a list or map) of field fd at fp,
// shown as sp.
func valueProblem(uo protojson.UnmarshalOptions, fd protoreflect.FieldDescriptor, val []byte, fp, sp string) *badInput {
	if fd.Kind() == protoreflect.MessageKind && !wellKnown(fd.Message()) {
		if b := jsonProblem(uo, fd.Message(), val, fp, sp); b != nil {
			return b
		}
		return &badInput{field: fp, msg: sp + " is not valid"}
	}
	return &badInput{field: fp, msg: sp + " must be " + wants(fd)}
}

func wellKnown(md protoreflect.MessageDescriptor) bool {
	return md.ParentFile() != nil && md.ParentFile().Package() == "google.protobuf"
}

// wants says what a value of fd (one element of a list) must be.
func wants(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return "a JSON string of valid UTF-8"
	case protoreflect.BytesKind:
		return "base64 text"
	case protoreflect.BoolKind:
		return "true or false"
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return fmt.Sprintf("an integer from %d to %d", math.MinInt32, math.MaxInt32)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return fmt.Sprintf("an integer from 0 to %d", uint32(math.MaxUint32))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return fmt.Sprintf("an integer from %d to %d", int64(math.MinInt64), int64(math.MaxInt64))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return fmt.Sprintf("an integer from 0 to %d", uint64(math.MaxUint64))
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		if vals.Len() > 8 {
			return "the name or number of a " + string(fd.Enum().Name()) + " value"
		}
		names := make([]string, 0, vals.Len())
		for i := range vals.Len() {
			names = append(names, string(vals.Get(i).Name()))
		}
		return "one of " + strings.Join(names, ", ") + " (or its number)"
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch md := fd.Message(); md.FullName() {
		case "google.protobuf.Timestamp":
			return `an RFC 3339 time such as "2026-01-02T15:04:05Z"`
		case "google.protobuf.Duration":
			return `a duration in seconds such as "1.5s"`
		case "google.protobuf.FieldMask":
			return "a comma-separated list of field paths"
		case "google.protobuf.Struct", "google.protobuf.Empty":
			return "a JSON object"
		case "google.protobuf.ListValue":
			return "a JSON array"
		case "google.protobuf.Any":
			return `a JSON object with "@type"`
		default:
			if v := md.Fields().ByName("value"); wellKnown(md) && v != nil {
				return wants(v) // a wrapper
			}
			return "a JSON object"
		}
	}
	return "a valid value"
}

// ---- path and query parameters ----

// rpcInput is the request message of the RPC grpc-gateway was serving
// (runtime.RPCMethod), or nil.
func rpcInput(ctx context.Context) protoreflect.MessageDescriptor {
	m, ok := runtime.RPCMethod(ctx)
	if !ok {
		return nil
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
	if !ok {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil
	}
	if md := sd.Methods().ByName(protoreflect.Name(method)); md != nil {
		return md.Input()
	}
	return nil
}

// paramProblem finds the path or query parameter of a request for md that
// grpc-gateway refuses: the path parameters, then the query parameters in
// name order. nil when none alone is refused.
func paramProblem(md protoreflect.MessageDescriptor, pathParams map[string]string, query url.Values) *badInput {
	names := make([]string, 0, len(pathParams))
	for k := range pathParams {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := runtime.PopulateFieldFromPath(dynamicpb.NewMessage(md), k, pathParams[k]); err != nil {
			fd, fp := resolvePath(md, k)
			if fd == nil {
				return &badInput{msg: "path parameter " + shown(k) + " is not valid"}
			}
			return &badInput{field: fp, msg: fp + " (path parameter) must be " + wants(fd)}
		}
	}
	names = names[:0]
	for k := range query {
		names = append(names, k)
	}
	sort.Strings(names)
	parser := &runtime.DefaultQueryParser{}
	for _, k := range names {
		name, _, isMap := strings.Cut(k, "[")
		fd, fp := resolvePath(md, name)
		if fd == nil {
			return &badInput{msg: unknownQueryParam(md, k, pathParams)}
		}
		if parser.Parse(dynamicpb.NewMessage(md), url.Values{k: query[k]}, utilities.NewDoubleArray(nil)) == nil {
			continue
		}
		switch {
		case isMap && !fd.IsMap():
			return &badInput{field: fp, msg: fp + " is not a map: query parameter " + shown(k) + " is not valid"}
		case fd.IsMap():
			return &badInput{field: fp, msg: fp + " (query parameter) is not valid"}
		case !fd.IsList() && len(query[k]) > 1:
			return &badInput{field: fp, msg: fp + " (query parameter) is given more than once"}
		case fd.Kind() == protoreflect.MessageKind && !wellKnown(fd.Message()):
			return &badInput{field: fp, msg: fp + " (query parameter) is a message: give its fields, e.g. " + fp + ".<field>"}
		}
		return &badInput{field: fp, msg: fp + " (query parameter) must be " + wants(fd)}
	}
	return nil
}

// resolvePath resolves a dotted path of proto or JSON names in md to its
// field and its proto path; nil when a part names no field.
func resolvePath(md protoreflect.MessageDescriptor, path string) (protoreflect.FieldDescriptor, string) {
	var fd protoreflect.FieldDescriptor
	var parts []string
	for i, name := range strings.Split(path, ".") {
		if i > 0 {
			if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
				return nil, ""
			}
			md = fd.Message()
		}
		fd = md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			fd = md.Fields().ByJSONName(name)
		}
		if fd == nil {
			return nil, ""
		}
		parts = append(parts, string(fd.Name()))
	}
	return fd, strings.Join(parts, ".")
}

// strictQueryOnce sets strictQueryParser once: grpc-gateway keeps the
// parser in a package variable (every edge of the process refuses unknown
// query parameters alike), which setting it at each New would race on.
var strictQueryOnce sync.Once

// strictQuery is the mux option that installs strictQueryParser, the first
// time only.
func strictQuery() runtime.ServeMuxOption {
	set := false
	strictQueryOnce.Do(func() { set = true })
	if !set {
		return func(*runtime.ServeMux) {}
	}
	return runtime.SetQueryParameterParser(&strictQueryParser{})
}

// strictQueryParser is grpc-gateway's query parser refusing a parameter
// that names no field of the request (grpc-gateway ignores it: a misspelt
// filter, ?from= for ?start_time=, was dropped without a word and the
// answer read as if it applied). The error handler says which, in
// paramProblem's words.
type strictQueryParser struct{ runtime.DefaultQueryParser }

func (p *strictQueryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	md := msg.ProtoReflect().Descriptor()
	for k := range values {
		name, _, _ := strings.Cut(k, "[")
		if filter.HasCommonPrefix(strings.Split(name, ".")) {
			continue // a parameter of the caller's own (the path, a download's format)
		}
		if fd, _ := resolvePath(md, name); fd == nil {
			return errors.New(unknownQueryParam(md, k, nil))
		}
	}
	return p.DefaultQueryParser.Parse(msg, values, filter)
}

// unknownQueryParam says that query parameter k names no field of md and
// which it takes (md's fields that are not path parameters).
func unknownQueryParam(md protoreflect.MessageDescriptor, k string, pathParams map[string]string) string {
	var takes []string
	fields := md.Fields()
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		if _, inPath := pathParams[name]; !inPath {
			takes = append(takes, name)
		}
	}
	msg := "query parameter " + shown(k) + " does not name a field of the request"
	if len(takes) == 0 {
		return msg + "; this call takes no query parameters"
	}
	return msg + "; it takes " + strings.Join(takes, ", ")
}

// routeRules are what the gateway checks of a route beyond grpc-gateway,
// read from the google.api.http rules (routes written as
// runtime.HTTPPattern writes them, "GET /v1/users/{id=*}"):
//   - noQuery: the routes without a body whose path binds every field of
//     the request, so that they take no query parameter. grpc-gateway does
//     not read their query at all, so strictQueryParser never sees it;
//     routeMiddleware refuses one there. (A call whose body is the whole
//     request reads its fields from the body, which refuses unknown ones,
//     and leaves the query to the request's signature.)
//   - body: the routes with a body and path variables, with what the body
//     is ("*": the whole request, else the field it fills). grpc-gateway
//     sets a path variable's field over the body's: a body naming the
//     field otherwise (PUT .../resources/a with "code": "b") was answered
//     as if it said the path's (review sec10 L3); routeMiddleware refuses
//     it (bodyConflict).
type routeRules struct {
	noQuery map[string]bool
	body    map[string]bodyRoute
}

// bodyRoute is what the body of a route is: "*" or a field's name, of the
// request md; keys are the body's keys its path binds, typ the struct
// bodyConflict decodes them into (newBodyRoute).
type bodyRoute struct {
	body string
	md   protoreflect.MessageDescriptor
	keys []bodyKey
	typ  reflect.Type
}

var (
	// pathVarRE: a path variable without a template ({id})
	pathVarRE = regexp.MustCompile(`\{([^}=]+)\}`)
	// pathAnyVarRE: any path variable ({id}, {name=orgs/*}), its field path
	pathAnyVarRE = regexp.MustCompile(`\{([^}=]+)(?:=[^}]*)?\}`)
)

// findRouteRules reads the google.api.http rules of every service in
// protoregistry.GlobalFiles (the components' generated code registers
// theirs).
func findRouteRules() routeRules {
	out := routeRules{noQuery: map[string]bool{}, body: map[string]bodyRoute{}}
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			methods := f.Services().Get(i).Methods()
			for j := range methods.Len() {
				m := methods.Get(j)
				rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if rule == nil {
					continue
				}
				for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					verb, path := ruleRoute(r)
					if path == "" {
						continue
					}
					route := verb + " " + pathVarRE.ReplaceAllString(path, "{$1=*}")
					if takesNoQuery(m.Input(), path, r.GetBody()) {
						out.noQuery[route] = true
					}
					if r.GetBody() != "" && pathAnyVarRE.MatchString(path) {
						out.body[route] = newBodyRoute(r.GetBody(), path, m.Input())
					}
				}
			}
		}
		return true
	})
	return out
}

// ruleRoute is the HTTP method and path template of rule r ("" when it
// has none).
func ruleRoute(r *annotations.HttpRule) (string, string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

// takesNoQuery: a call without a body whose path binds every field of md
// reads no query parameter.
func takesNoQuery(md protoreflect.MessageDescriptor, path, body string) bool {
	if body != "" {
		return false
	}
	bound := map[string]bool{}
	for _, m := range pathAnyVarRE.FindAllStringSubmatch(path, -1) {
		if strings.Contains(m[1], ".") {
			return false // {filter.api}: the rest of filter comes from the query
		}
		bound[m[1]] = true
	}
	fields := md.Fields()
	for i := range fields.Len() {
		if !bound[string(fields.Get(i).Name())] {
			return false
		}
	}
	return true
}

// queryRefused is the error of a query parameter given to a route that
// takes none; nil otherwise.
func (routes routeRules) queryRefused(r *http.Request, pattern string) error {
	if r.URL.RawQuery == "" || !routes.noQuery[r.Method+" "+pattern] {
		return nil
	}
	names := make([]string, 0, 4)
	for k := range r.URL.Query() {
		names = append(names, k)
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return apierr.ToStatus(grpcx.BadRequest("", "query parameter "+shown(names[0])+
		" is not taken: this call takes no query parameters"))
}

// bodyConflict is the error of a body that names a field the path binds
// (pattern's variables, params their values) with another value; nil
// otherwise (the same value, or none). The body is read and put back for
// grpc-gateway; one that is no JSON object is left to grpc-gateway's
// decoder to refuse. It is decoded into the route's struct of the
// path-bound keys alone (bodyRoute.keys), which encoding/json fills
// skipping every other key without allocating (a map of the whole body
// cost an anonymous caller's 1 MiB body ~100 ms and 19 MB before any
// authentication; review sec12 #1).
func (routes routeRules) bodyConflict(r *http.Request, pattern string, params map[string]string) error {
	br, ok := routes.body[r.Method+" "+pattern]
	if !ok || len(br.keys) == 0 || len(params) == 0 || r.Body == nil {
		return nil
	}
	raw, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		// grpc-gateway reads it again and answers the error (a body over
		// the limit: 413)
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(raw), errReader{err}))
		return nil //nolint:nilerr // answered by grpc-gateway's read
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	v := reflect.New(br.typ)
	if err := json.Unmarshal(raw, v.Interface()); err != nil {
		return nil //nolint:nilerr // not a JSON object of the request: grpc-gateway's decoder says what is wrong
	}
	for i, k := range br.keys {
		got := v.Elem().Field(i).Bytes()
		want, bound := params[k.param]
		if len(got) == 0 || !bound || string(got) == "null" {
			continue
		}
		var str string
		if json.Unmarshal(got, &str) == nil && str == want || string(got) == want {
			continue // the path's value (a number or bool as the path has it)
		}
		return apierr.ToStatus(grpcx.BadRequest(k.param, "the body's "+shown(k.key)+" differs from the path's: "+k.param+
			" is given by the path ("+pattern+"); leave it out of the body or give the same"))
	}
	return nil
}

// bodyKey is a key of a route's body that a path variable binds: the
// variable (param, its field path) and the key (proto or JSON name).
type bodyKey struct{ param, key string }

// newBodyRoute is the bodyRoute of a rule whose body is body, path its
// path template, md its request: the keys of the body that the path's
// variables bind (a top-level field of the body's message), and the struct
// with a json.RawMessage field for each.
func newBodyRoute(body, path string, md protoreflect.MessageDescriptor) bodyRoute {
	br := bodyRoute{body: body, md: md}
	sub := md
	if body != "*" {
		fd := md.Fields().ByName(protoreflect.Name(body))
		if fd == nil || fd.Message() == nil {
			return br
		}
		sub = fd.Message()
	}
	var fields []reflect.StructField
	for _, m := range pathAnyVarRE.FindAllStringSubmatch(path, -1) {
		param, rest := m[1], m[1]
		if body != "*" {
			// the body's own field ({resource.code}), or one of the
			// request beside the body that the body's message has too
			// (PUT /v1/sync/subscriptions/{id} with body subscription:
			// its id; review sec12 #7)
			rest, _ = strings.CutPrefix(param, body+".")
		}
		if strings.Contains(rest, ".") {
			continue // deeper: left as it is
		}
		fd := sub.Fields().ByName(protoreflect.Name(rest))
		if fd == nil {
			continue
		}
		for _, key := range []string{string(fd.Name()), fd.JSONName()} {
			if slices.ContainsFunc(br.keys, func(k bodyKey) bool { return k.key == key }) {
				continue
			}
			br.keys = append(br.keys, bodyKey{param: param, key: key})
			fields = append(fields, reflect.StructField{Name: "F" + strconv.Itoa(len(fields)),
				Type: reflect.TypeFor[json.RawMessage](), Tag: reflect.StructTag(`json:"` + key + `"`)})
		}
	}
	if len(fields) > 0 {
		br.typ = reflect.StructOf(fields)
	}
	return br
}

// errReader reads nothing but err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
