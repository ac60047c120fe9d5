package main

import (
	"context"
	"errors"
	"strings"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

type forumsCmd struct {
	List    forumsListCmd    `cmd:"" help:"List the 38 provincial forums with their active members, and the national total."`
	Get     forumsGetCmd     `cmd:"" help:"Show the forum of one province."`
	Members forumsMembersCmd `cmd:"" help:"List the memberships of a province's forum."`
}

var membershipStates = map[string]knkv1.ForumMembership_State{
	"active": knkv1.ForumMembership_STATE_ACTIVE,
	"ended":  knkv1.ForumMembership_STATE_ENDED,
}

// forumName accepts a province code (61) or a forum name (forums/61).
func forumName(province string) string {
	return resourceName("forums", strings.TrimSpace(province))
}

type forumsListCmd struct {
	PageSize int32 `help:"Page size (server default 50, at most 1000)."`
	All      bool  `help:"Follow next_page_token and print every forum in one list."`
}

func (c *forumsListCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewForumServiceClient(cc)
	req := &knkv1.ListForumsRequest{PageSize: c.PageSize}
	page := func(token string) (*knkv1.ListForumsResponse, error) {
		ctx, cancel := a.call()
		defer cancel()
		req.PageToken = token
		return client.ListForums(ctx, req)
	}
	out, err := page("")
	if err != nil {
		return err
	}
	// At most 38 forums: gather them into one response, national total included.
	for token := out.GetNextPageToken(); c.All && token != ""; {
		resp, err := page(token)
		if err != nil {
			return err
		}
		if resp.GetNextPageToken() == token {
			return errors.New("server returned the same page token twice")
		}
		out.Forums = append(out.Forums, resp.GetForums()...)
		out.NationalActiveMembers = resp.GetNationalActiveMembers()
		token = resp.GetNextPageToken()
	}
	if c.All {
		out.NextPageToken = ""
	}
	return a.printFull(out)
}

type forumsGetCmd struct {
	Province string `arg:"" help:"Province code (61) or forum name (forums/61)."`
}

func (c *forumsGetCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	ctx, cancel := a.call()
	defer cancel()
	f, err := knkv1.NewForumServiceClient(cc).GetForum(ctx, &knkv1.GetForumRequest{Name: forumName(c.Province)})
	if err != nil {
		return err
	}
	return a.printFull(f)
}

type forumsMembersCmd struct {
	Province string `arg:"" help:"Province code (61) or forum name (forums/61)."`
	State    string `help:"Only memberships in this state: active or ended."`
	PageSize int32  `help:"Page size (server default 50, at most 1000)."`
	All      bool   `help:"Follow next_page_token and print every matching membership."`
}

func (c *forumsMembersCmd) Run(a *app) error {
	req := &knkv1.ListForumMembersRequest{Parent: forumName(c.Province), PageSize: c.PageSize}
	if c.State != "" {
		var err error
		if req.State, err = parseEnum("state", c.State, membershipStates, knkv1.ForumMembership_State_value); err != nil {
			return err
		}
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewForumServiceClient(cc)
	return pages(a, c.All, "members", func(ctx context.Context, token string) (*knkv1.ListForumMembersResponse, error) {
		req.PageToken = token
		return client.ListForumMembers(ctx, req)
	}, (*knkv1.ListForumMembersResponse).GetMembers)
}
