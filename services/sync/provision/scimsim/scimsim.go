// Package scimsim is the business system of the SCIM tests and of the
// provisioning bench (`uias bench --only provision`): a
// SCIM 2.0 service provider built with github.com/elimity-com/scim,
// storing in memory, checking the bearer token and If-Match, and counting
// what it is asked. It imports no test package, so the uias binary may
// link it.
package scimsim

import (
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"

	goscim "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// Resources is one resource type (Users or Groups) of the SCIM server,
// in memory, counting what it is asked.
type Resources struct {
	mu      sync.Mutex
	res     map[string]goscim.Resource
	next    int
	creates map[string]int // by externalId
	patches int
	deletes int
	// OnCreate, when set, runs after a resource is stored (under no lock)
	// with the number of creates so far.
	OnCreate func(r *http.Request, n int)
}

// NewResources returns an empty resource type.
func NewResources() *Resources {
	return &Resources{res: map[string]goscim.Resource{}, creates: map[string]int{}}
}

func (h *Resources) Create(r *http.Request, attrs goscim.ResourceAttributes) (goscim.Resource, error) {
	h.mu.Lock()
	if attrs["userName"] != nil {
		for _, x := range h.res {
			if strings.EqualFold(fmt.Sprint(x.Attributes["userName"]), fmt.Sprint(attrs["userName"])) {
				h.mu.Unlock()
				return goscim.Resource{}, scimerrors.ScimErrorUniqueness
			}
		}
	}
	h.next++
	id := strconv.Itoa(h.next)
	ext, _ := attrs["externalId"].(string)
	delete(attrs, "externalId")
	res := goscim.Resource{ID: id, ExternalID: optional.NewString(ext), Attributes: attrs, Meta: goscim.Meta{Version: `W/"1"`}}
	h.res[id] = res
	h.creates[ext]++
	n := 0
	for _, c := range h.creates {
		n += c
	}
	h.mu.Unlock()
	if h.OnCreate != nil {
		h.OnCreate(r, n)
	}
	return res, nil
}

func (h *Resources) Get(_ *http.Request, id string) (goscim.Resource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res, ok := h.res[id]
	if !ok {
		return goscim.Resource{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	return res, nil
}

func (h *Resources) GetAll(_ *http.Request, p goscim.ListRequestParams) (goscim.Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	page := goscim.Page{Resources: []goscim.Resource{}}
	for _, res := range h.res {
		// the filter sees the common attributes too (externalId eq ...)
		attrs := maps.Clone(res.Attributes)
		if res.ExternalID.Present() {
			attrs["externalId"] = res.ExternalID.Value()
		}
		if p.FilterValidator != nil && p.FilterValidator.PassesFilter(attrs) != nil {
			continue
		}
		page.Resources = append(page.Resources, res)
	}
	page.TotalResults = len(page.Resources)
	return page, nil
}

func (h *Resources) Replace(_ *http.Request, id string, attrs goscim.ResourceAttributes) (goscim.Resource, error) {
	return goscim.Resource{}, scimerrors.ScimError{Status: http.StatusNotImplemented, Detail: "PUT is not used"}
}

// checkVersion answers 412 when If-Match does not name the current version.
func (h *Resources) checkVersion(r *http.Request, res goscim.Resource) error {
	if m := r.Header.Get("If-Match"); m != res.Meta.Version {
		return scimerrors.ScimError{Status: http.StatusPreconditionFailed, Detail: "If-Match " + m + " is not " + res.Meta.Version}
	}
	return nil
}

func (h *Resources) Delete(r *http.Request, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	res, ok := h.res[id]
	if !ok {
		return scimerrors.ScimErrorResourceNotFound(id)
	}
	if err := h.checkVersion(r, res); err != nil {
		return err
	}
	delete(h.res, id)
	h.deletes++
	return nil
}

func (h *Resources) Patch(r *http.Request, id string, ops []goscim.PatchOperation) (goscim.Resource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res, ok := h.res[id]
	if !ok {
		return goscim.Resource{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	if err := h.checkVersion(r, res); err != nil {
		return goscim.Resource{}, err
	}
	for _, op := range ops {
		if op.Op != "replace" || op.Path != nil {
			return goscim.Resource{}, scimerrors.ScimErrorBadRequest("only replace without a path is supported here")
		}
		vals, _ := op.Value.(map[string]any)
		for k, v := range vals {
			res.Attributes[k] = v
		}
	}
	v, _ := strconv.Atoi(strings.Trim(strings.TrimPrefix(res.Meta.Version, "W/"), `"`))
	res.Meta.Version = `W/"` + strconv.Itoa(v+1) + `"`
	h.res[id] = res
	h.patches++
	return res, nil
}

// ByExternal returns the resource whose externalId is ext.
func (h *Resources) ByExternal(ext string) (goscim.Resource, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.res {
		if r.ExternalID.Value() == ext {
			return r, true
		}
	}
	return goscim.Resource{}, false
}

// All returns the resources held (copies of their attributes, with
// "id" and "externalId").
func (h *Resources) All() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for id, r := range h.res {
		m := maps.Clone(map[string]any(r.Attributes))
		m["id"], m["externalId"] = id, r.ExternalID.Value()
		out = append(out, m)
	}
	return out
}

// Stats counts the users held, the creates (and the most for one
// externalId), patches and deletes.
func (h *Resources) Stats() (users, creates, patches, deletes int, maxPerID int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.res {
		if r.Attributes["userName"] != nil {
			users++
		}
	}
	for _, c := range h.creates {
		creates += c
		maxPerID = max(maxPerID, c)
	}
	return users, creates, h.patches, h.deletes, maxPerID
}

// SCIMHandler serves users and groups under /scim/v2 to callers with the
// bearer token.
func Handler(users, groups *Resources, token string) (http.Handler, error) {
	srv, err := goscim.NewServer(&goscim.ServerArgs{
		ServiceProviderConfig: &goscim.ServiceProviderConfig{},
		ResourceTypes: []goscim.ResourceType{
			{ID: optional.NewString("User"), Name: "User", Endpoint: "/Users", Schema: schema.CoreUserSchema(), Handler: users},
			{ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups", Schema: schema.CoreGroupSchema(), Handler: groups},
		},
	})
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"status":"401","detail":"bad token"}`, http.StatusUnauthorized)
			return
		}
		http.StripPrefix("/scim/v2", srv).ServeHTTP(w, r)
	}), nil
}
