package main

import (
	"context"
	"fmt"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	knkv1 "github.com/knk-id/knk/gen/knk/v1"
)

type sessionsCmd struct {
	Create      sessionsCreateCmd      `cmd:"" help:"Schedule a training session (training unit or admin)."`
	List        sessionsListCmd        `cmd:"" help:"List sessions in start-time order."`
	Get         sessionsGetCmd         `cmd:"" help:"Show a session."`
	Cancel      sessionsCancelCmd      `cmd:"" help:"Cancel a scheduled session; its enrolments end."`
	Complete    sessionsCompleteCmd    `cmd:"" help:"Complete a session: lock its results and credit every passed topic."`
	Enrollments sessionsEnrollmentsCmd `cmd:"" help:"List the enrolments of a session, with attendance and scores."`
}

var sessionModes = map[string]knkv1.Session_Mode{
	"in-person": knkv1.Session_MODE_IN_PERSON,
	"online":    knkv1.Session_MODE_ONLINE,
}

var sessionStates = map[string]knkv1.Session_State{
	"scheduled": knkv1.Session_STATE_SCHEDULED,
	"completed": knkv1.Session_STATE_COMPLETED,
	"cancelled": knkv1.Session_STATE_CANCELLED,
}

// parseEnum reads an enum flag: a friendly word from words ("wage-scale", also
// spelt "wage_scale" or "Wage-Scale") or the full enum name from names
// (knkv1.Topic_value: "TOPIC_WAGE_SCALE", any case). The UNSPECIFIED value (0) is
// never accepted. The error lists the valid words.
func parseEnum[E ~int32](flag, v string, words map[string]E, names map[string]int32) (E, error) {
	w := strings.ToLower(strings.TrimSpace(v))
	if e, ok := words[w]; ok {
		return e, nil
	}
	if e, ok := words[strings.ReplaceAll(w, "_", "-")]; ok {
		return e, nil
	}
	if n, ok := names[strings.ToUpper(w)]; ok && n != 0 {
		return E(n), nil
	}
	full := make([]string, 0, len(names))
	for name, n := range names {
		if n != 0 {
			full = append(full, name)
		}
	}
	slices.SortFunc(full, func(x, y string) int { return int(names[x] - names[y]) })
	return 0, fmt.Errorf("--%s must be one of %s (or %s), not %q", flag, keys(words), strings.Join(full, ", "), v)
}

// parseTime reads an RFC 3339 time flag; empty gives nil.
func parseTime(flag, v string) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("--%s: %q is not an RFC 3339 time such as 2026-12-01T09:00:00+07:00", flag, v)
	}
	return timestamppb.New(t), nil
}

type sessionsCreateCmd struct {
	Title     string   `required:"" help:"Title of the session."`
	Topics    []string `required:"" sep:"," help:"Comma-separated topics: k3, pkwt, wage-scale, social-security (or TOPIC_K3, …)."`
	Province  string   `required:"" help:"Two-digit province code of the session, e.g. 61."`
	Venue     string   `help:"Where the session is held (required for in-person sessions)."`
	Mode      string   `required:"" help:"in-person or online (or MODE_IN_PERSON, MODE_ONLINE)."`
	Start     string   `required:"" help:"Start time, RFC 3339, e.g. 2026-12-01T09:00:00+07:00."`
	End       string   `required:"" help:"End time, RFC 3339, after --start."`
	Capacity  int32    `required:"" help:"Most cadres the session takes."`
	Organizer string   `help:"Organizing training unit (ID or organizations/ID); admin callers only, training units always organize their own sessions."`
	RequestID string   `name:"request-id" help:"Idempotency key: repeating a create with the same id returns the first session instead of scheduling another."`
}

func (c *sessionsCreateCmd) Run(a *app) error {
	s := &knkv1.Session{
		Organizer:    orgName(c.Organizer),
		Title:        c.Title,
		ProvinceCode: c.Province,
		Venue:        c.Venue,
		Capacity:     c.Capacity,
	}
	for _, w := range c.Topics {
		if strings.TrimSpace(w) == "" {
			continue
		}
		t, err := parseEnum("topics", w, topics, knkv1.Topic_value)
		if err != nil {
			return err
		}
		if !slices.Contains(s.Topics, t) {
			s.Topics = append(s.Topics, t)
		}
	}
	if len(s.Topics) == 0 {
		return fmt.Errorf("--topics needs at least one of %s", keys(topics))
	}
	var err error
	if s.Mode, err = parseEnum("mode", c.Mode, sessionModes, knkv1.Session_Mode_value); err != nil {
		return err
	}
	if s.StartTime, err = parseTime("start", c.Start); err != nil {
		return err
	}
	if s.EndTime, err = parseTime("end", c.End); err != nil {
		return err
	}
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewTrainingServiceClient(cc).CreateSession(ctx, &knkv1.CreateSessionRequest{Session: s, RequestId: c.RequestID})
	})
}

type sessionsListCmd struct {
	Province    string `help:"Only sessions in this province (two-digit code)."`
	Topic       string `help:"Only sessions covering this topic: k3, pkwt, wage-scale or social-security."`
	State       string `help:"Only sessions in this state: scheduled, completed or cancelled."`
	StartAfter  string `help:"Only sessions starting after this RFC 3339 time."`
	StartBefore string `help:"Only sessions starting before this RFC 3339 time."`
	PageSize    int32  `help:"Page size (server default 50, at most 1000)."`
	All         bool   `help:"Follow next_page_token and print every matching session."`
}

func (c *sessionsListCmd) Run(a *app) error {
	req := &knkv1.ListSessionsRequest{PageSize: c.PageSize, ProvinceCode: c.Province}
	var err error
	if c.Topic != "" {
		if req.Topic, err = parseEnum("topic", c.Topic, topics, knkv1.Topic_value); err != nil {
			return err
		}
	}
	if c.State != "" {
		if req.State, err = parseEnum("state", c.State, sessionStates, knkv1.Session_State_value); err != nil {
			return err
		}
	}
	if req.StartAfter, err = parseTime("start-after", c.StartAfter); err != nil {
		return err
	}
	if req.StartBefore, err = parseTime("start-before", c.StartBefore); err != nil {
		return err
	}
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewTrainingServiceClient(cc)
	return pages(a, c.All, "sessions", func(ctx context.Context, token string) (*knkv1.ListSessionsResponse, error) {
		req.PageToken = token
		return client.ListSessions(ctx, req)
	}, (*knkv1.ListSessionsResponse).GetSessions)
}

type sessionsGetCmd struct {
	ID string `arg:"" name:"id" help:"Session id (01J…) or name (sessions/01J…)."`
}

func (c *sessionsGetCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewTrainingServiceClient(cc).GetSession(ctx, &knkv1.GetSessionRequest{Name: resourceName("sessions", c.ID)})
	})
}

type sessionsCancelCmd struct {
	ID     string `arg:"" name:"id" help:"Session id (01J…) or name (sessions/01J…)."`
	Reason string `required:"" help:"Why the session is cancelled."`
}

func (c *sessionsCancelCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewTrainingServiceClient(cc).CancelSession(ctx, &knkv1.CancelSessionRequest{
			Name:   resourceName("sessions", c.ID),
			Reason: c.Reason,
		})
	})
}

type sessionsCompleteCmd struct {
	ID string `arg:"" name:"id" help:"Session id (01J…) or name (sessions/01J…)."`
}

func (c *sessionsCompleteCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewTrainingServiceClient(cc).CompleteSession(ctx, &knkv1.CompleteSessionRequest{Name: resourceName("sessions", c.ID)})
	})
}

type sessionsEnrollmentsCmd struct {
	ID       string `arg:"" name:"id" help:"Session id (01J…) or name (sessions/01J…)."`
	PageSize int32  `help:"Page size (server default 50, at most 1000)."`
	All      bool   `help:"Follow next_page_token and print every enrolment."`
}

func (c *sessionsEnrollmentsCmd) Run(a *app) error {
	cc, err := a.conn()
	if err != nil {
		return err
	}
	client := knkv1.NewTrainingServiceClient(cc)
	req := &knkv1.ListEnrollmentsRequest{Parent: resourceName("sessions", c.ID), PageSize: c.PageSize}
	return pages(a, c.All, "enrollments", func(ctx context.Context, token string) (*knkv1.ListEnrollmentsResponse, error) {
		req.PageToken = token
		return client.ListEnrollments(ctx, req)
	}, (*knkv1.ListEnrollmentsResponse).GetEnrollments)
}

type enrollCmd struct {
	Session    string `arg:"" help:"Session id (01J…) or name (sessions/01J…)."`
	Cadre      string `arg:"" help:"Cadre id (01J…) or name (cadres/01J…)."`
	NoWaitlist bool   `name:"no-waitlist" help:"Refuse (SESSION_FULL) instead of putting the cadre on the waitlist of a full session."`
}

func (c *enrollCmd) Run(a *app) error {
	return callPrint(a, func(ctx context.Context, cc *grpc.ClientConn) (proto.Message, error) {
		return knkv1.NewTrainingServiceClient(cc).EnrollCadre(ctx, &knkv1.EnrollCadreRequest{
			Parent:     resourceName("sessions", c.Session),
			Cadre:      resourceName("cadres", c.Cadre),
			NoWaitlist: c.NoWaitlist,
		})
	})
}

type unenrollCmd struct {
	Session string `arg:"" help:"Session id (01J…) or name (sessions/01J…)."`
	Cadre   string `arg:"" help:"Cadre id (01J…) or name (cadres/01J…)."`
}

func (c *unenrollCmd) Run(a *app) error {
	name := enrollmentName(c.Session, c.Cadre)
	cc, err := a.conn()
	if err != nil {
		return err
	}
	ctx, cancel := a.call()
	defer cancel()
	if _, err := knkv1.NewTrainingServiceClient(cc).DeleteEnrollment(ctx, &knkv1.DeleteEnrollmentRequest{Name: name}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "deleted: %s\n", name)
	return err
}

// enrollmentName is sessions/{session_id}/enrollments/{cadre_id}; both may be given
// as ids or full names.
func enrollmentName(session, cadre string) string {
	return resourceName("sessions", session) + "/enrollments/" + strings.TrimPrefix(cadre, "cadres/")
}
