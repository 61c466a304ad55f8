package plan

import (
	"fmt"
	"io"
	"strings"
)

// This file renders what flagsync.yaml's policies said about a plan: the changes they
// refused (Blocked entries of kind BlockedPolicy) and their warnings on applied changes,
// in every format.

// policyTitle and warningTitle head the two sections in text and Markdown.
func policyTitle(p Plan) string {
	return "Refused by policies (never applied; " + p.ServiceName() + " will still differ from Git):"
}

const warningTitle = "Policy warnings (the changes are applied):"

// changeOf names a refused or warned change: "3. update".
func changeOf(order int, action Action) string {
	if order <= 0 {
		return string(action)
	}
	return fmt.Sprintf("%d. %s", order, action)
}

// withWhere appends " (file:line)" when the place is known.
func withWhere(s, at string) string {
	if at == "" {
		return s
	}
	return s + " (" + at + ")"
}

// warningTarget names the flag and environment a warning is about.
func warningTarget(w Warning) string {
	if w.Environment != "" {
		return w.Flag().String() + " (" + w.Environment + ")"
	}
	return w.Flag().String()
}

// writeTextPolicies writes the policies' refusals and warnings, if any.
func writeTextPolicies(w io.Writer, p Plan, paint func(code, s string) string) {
	if refused := p.PolicyRefused(); len(refused) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, paint(ansiRed, policyTitle(p)))
		for _, b := range refused {
			fmt.Fprintf(w, "  ! %s: %s\n", blockedTarget(b), withWhere(changeOf(b.Order, b.Action)+": "+b.Reason, b.Where()))
		}
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, paint(ansiYellow, warningTitle))
		for _, x := range p.Warnings {
			fmt.Fprintf(w, "  * %s: %s\n", warningTarget(x), withWhere(changeOf(x.Order, x.Action)+": "+x.Policy+": "+x.Message, x.Where()))
		}
	}
}

// writeMarkdownPolicies writes the policies' refusals as a caution and their warnings as
// a warning; a folded comment lists at most maxFoldedBlocked of each.
func writeMarkdownPolicies(b *strings.Builder, p Plan, level int) {
	if refused := p.PolicyRefused(); len(refused) > 0 {
		b.WriteString("> [!CAUTION]\n> Changes flagsync.yaml's policies refuse; they are never applied, and " + p.ServiceName() + " will still differ from Git:\n")
		for i, x := range refused {
			if level >= mdFlags && i == maxFoldedBlocked {
				fmt.Fprintf(b, "> - … and %d more\n", len(refused)-i)
				break
			}
			fmt.Fprintf(b, "> - `%s` %s: %s%s\n", blockedTarget(x), mdEscape(changeOf(x.Order, x.Action)), mdEscape(x.Reason), mdWhere(x.Where()))
		}
		b.WriteString("\n")
	}
	if len(p.Warnings) > 0 {
		b.WriteString("> [!WARNING]\n> " + warningTitle + "\n")
		for i, x := range p.Warnings {
			if level >= mdFlags && i == maxFoldedBlocked {
				fmt.Fprintf(b, "> - … and %d more\n", len(p.Warnings)-i)
				break
			}
			fmt.Fprintf(b, "> - `%s` %s: **%s**: %s%s\n", warningTarget(x), mdEscape(changeOf(x.Order, x.Action)), mdEscape(x.Policy), mdEscape(x.Message), mdWhere(x.Where()))
		}
		b.WriteString("\n")
	}
}

// mdWhere is " (`file:line`)", or "" when the place is unknown.
func mdWhere(at string) string {
	if at == "" {
		return ""
	}
	return " (<code>" + cell(at) + "</code>)"
}

// jsonWarning is a Warning with its environment always present.
type jsonWarning struct {
	Service     string `json:"service"`
	Scope       string `json:"scope"`
	Key         string `json:"key"`
	Environment string `json:"environment"`
	Order       int    `json:"order"`
	Action      Action `json:"action"`
	Policy      string `json:"policy"`
	Message     string `json:"message"`
	File        string `json:"file,omitempty"`
	Line        int    `json:"line,omitempty"`
}

func jsonWarnings(ws []Warning) []jsonWarning {
	if len(ws) == 0 {
		return nil
	}
	out := make([]jsonWarning, len(ws))
	for i, w := range ws {
		out[i] = jsonWarning{Service: w.Service, Scope: w.Scope, Key: w.Key, Environment: w.Environment, Order: w.Order,
			Action: w.Action, Policy: w.Policy, Message: w.Message, File: w.File, Line: w.Line}
	}
	return out
}
