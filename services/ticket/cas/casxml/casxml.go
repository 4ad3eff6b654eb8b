// Package casxml checks a CAS validation or proxy answer against the CAS
// 3.0 protocol's XML schema (the cas:serviceResponse schema of the CAS 3.0
// specification, schema version 3.0.3), written out as code because Go has
// no XSD validator: the element names, order and occurrences, the simple
// types (xs:dateTime, xs:boolean) and the required code attribute. Tests
// of the CAS endpoints run every answer through Check.
package casxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// NS is the CAS namespace.
const NS = "http://www.yale.edu/tp/cas"

// node is an element of the answer.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	text     strings.Builder
	children []*node
}

func parse(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not well-formed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name, attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, errors.New("text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

func (n *node) is(local string) bool { return n.name.Space == NS && n.name.Local == local }

func (n *node) path() string { return "cas:" + n.name.Local }

// simple checks an element of simple content (no child elements) and no
// attributes but those allowed.
func simple(n *node, attrs ...string) error {
	if len(n.children) > 0 {
		return fmt.Errorf("%s must hold text only, has element %s", n.path(), n.children[0].name.Local)
	}
	for _, a := range n.attrs {
		if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
			continue
		}
		ok := false
		for _, want := range attrs {
			if a.Name.Space == "" && a.Name.Local == want {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("%s has an attribute the schema does not allow: %s", n.path(), a.Name.Local)
		}
	}
	return nil
}

func attr(n *node, name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// Check validates a cas:serviceResponse document.
func Check(data []byte) error {
	root, err := parse(data)
	if err != nil {
		return err
	}
	if !root.is("serviceResponse") {
		return fmt.Errorf("root is {%s}%s, want cas:serviceResponse in %s", root.name.Space, root.name.Local, NS)
	}
	if strings.TrimSpace(root.text.String()) != "" {
		return errors.New("cas:serviceResponse has text content")
	}
	if len(root.children) != 1 {
		return fmt.Errorf("cas:serviceResponse must hold exactly one of authenticationSuccess, authenticationFailure, proxySuccess, proxyFailure; it holds %d elements", len(root.children))
	}
	c := root.children[0]
	switch {
	case c.is("authenticationSuccess"):
		return success(c)
	case c.is("authenticationFailure"), c.is("proxyFailure"):
		if err := simple(c, "code"); err != nil {
			return err
		}
		if code, ok := attr(c, "code"); !ok || code == "" {
			return fmt.Errorf("%s needs its code attribute", c.path())
		}
		return nil
	case c.is("proxySuccess"):
		if len(c.children) != 1 || !c.children[0].is("proxyTicket") || strings.TrimSpace(c.text.String()) != "" {
			return errors.New("cas:proxySuccess must hold exactly one cas:proxyTicket")
		}
		return simple(c.children[0])
	}
	return fmt.Errorf("unexpected element {%s}%s in cas:serviceResponse", c.name.Space, c.name.Local)
}

// success checks AuthenticationSuccessType: user, attributes?,
// proxyGrantingTicket?, proxies?, in that order.
func success(n *node) error {
	if strings.TrimSpace(n.text.String()) != "" {
		return errors.New("cas:authenticationSuccess has text content")
	}
	order := []string{"user", "attributes", "proxyGrantingTicket", "proxies"}
	next := 0
	for _, c := range n.children {
		i := -1
		for j := next; j < len(order); j++ {
			if c.is(order[j]) {
				i = j
				break
			}
		}
		if i < 0 {
			return fmt.Errorf("element {%s}%s is out of place in cas:authenticationSuccess (sequence user, attributes?, proxyGrantingTicket?, proxies?)", c.name.Space, c.name.Local)
		}
		if next == 0 && i != 0 {
			return errors.New("cas:authenticationSuccess must start with cas:user")
		}
		next = i + 1
		var err error
		switch order[i] {
		case "user", "proxyGrantingTicket":
			err = simple(c)
		case "attributes":
			err = attributes(c)
		case "proxies":
			err = proxies(c)
		}
		if err != nil {
			return err
		}
	}
	if next == 0 {
		return errors.New("cas:authenticationSuccess has no cas:user")
	}
	return nil
}

// attributes checks AttributesType: authenticationDate (xs:dateTime),
// longTermAuthenticationRequestTokenUsed (xs:boolean), isFromNewLogin
// (xs:boolean), each exactly once and in that order, then any elements.
func attributes(n *node) error {
	fixed := []struct {
		name  string
		check func(string) error
	}{{"authenticationDate", dateTime}, {"longTermAuthenticationRequestTokenUsed", boolean}, {"isFromNewLogin", boolean}}
	if len(n.children) < len(fixed) {
		return fmt.Errorf("cas:attributes must start with %s, %s and %s", fixed[0].name, fixed[1].name, fixed[2].name)
	}
	for i, f := range fixed {
		c := n.children[i]
		if !c.is(f.name) {
			return fmt.Errorf("cas:attributes element %d is %s, want cas:%s (schema 3.0.3 order)", i+1, c.name.Local, f.name)
		}
		if err := simple(c); err != nil {
			return err
		}
		if err := f.check(strings.TrimSpace(c.text.String())); err != nil {
			return fmt.Errorf("cas:%s: %w", f.name, err)
		}
	}
	for _, c := range n.children[len(fixed):] {
		if c.name.Local == "" {
			return errors.New("an attribute element without a name")
		}
	}
	return nil
}

func proxies(n *node) error {
	if len(n.children) == 0 {
		return errors.New("cas:proxies needs at least one cas:proxy")
	}
	for _, c := range n.children {
		if !c.is("proxy") {
			return fmt.Errorf("cas:proxies holds %s, want cas:proxy", c.name.Local)
		}
		if err := simple(c); err != nil {
			return err
		}
	}
	return nil
}

// dateTime checks the xs:dateTime lexical form (with or without a time
// zone and fractional seconds).
func dateTime(v string) error {
	for _, layout := range []string{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.999999999Z07:00",
		"2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999"} {
		if _, err := time.Parse(layout, v); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%q is not an xs:dateTime", v)
}

func boolean(v string) error {
	switch v {
	case "true", "false", "1", "0":
		return nil
	}
	return fmt.Errorf("%q is not an xs:boolean", v)
}
