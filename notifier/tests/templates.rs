//! Notification templates: Alertmanager's data and functions, the default templates
//! of each medium, user template files, Chinese text, and errors that name the
//! template. Expected outputs are worked out by hand from Alertmanager's documented
//! data model (`template.Data`) and Go's `text/template` rules.

use argus_notifier::NotifierError;
use argus_notifier::notification::{Notification, NotifyAlert};
use argus_notifier::template::{CompiledTemplate, TemplateData, Templates};
use argus_schemas::{Labels, Timestamp};

/// 2024-05-01T10:00:00Z in ns.
const T0: i64 = 1_714_557_600 * 1_000_000_000;
const MIN: i64 = 60 * 1_000_000_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn alert(l: &[(&str, &str)], a: &[(&str, &str)], resolved: bool) -> NotifyAlert {
    NotifyAlert {
        labels: labels(l),
        annotations: labels(a),
        starts_at: Timestamp(T0),
        ends_at: resolved.then_some(Timestamp(T0 + 90 * MIN)),
        generator_url: "http://prom:9090/graph?g0.expr=up&g0.tab=1".into(),
        fingerprint: 0x00ab_cdef_0123_4567,
        resolved,
    }
}

/// Two firing disk alerts and one resolved, grouped by alertname.
fn mixed() -> Notification {
    Notification {
        receiver: "ops.team".into(),
        group_key: "{}:{alertname=\"DiskFull\"}".into(),
        group_labels: labels(&[("alertname", "DiskFull")]),
        alerts: vec![
            alert(
                &[
                    ("alertname", "DiskFull"),
                    ("instance", "web-1"),
                    ("severity", "critical"),
                ],
                &[("summary", "disk / is 95% full")],
                false,
            ),
            alert(
                &[
                    ("alertname", "DiskFull"),
                    ("instance", "web-2"),
                    ("severity", "critical"),
                ],
                &[("summary", "disk / is 97% full")],
                false,
            ),
            alert(
                &[
                    ("alertname", "DiskFull"),
                    ("instance", "db-1"),
                    ("severity", "critical"),
                ],
                &[("summary", "disk / is 91% full")],
                true,
            ),
        ],
        external_url: "http://argus.example:9093".into(),
        now: Timestamp(T0 + 120 * MIN),
    }
}

fn render(t: &Templates, text: &str, n: &Notification) -> String {
    t.compile("test", text)
        .unwrap()
        .render(&TemplateData::new(n))
        .unwrap()
}

fn render_err(t: &Templates, text: &str, n: &Notification) -> String {
    match t.compile("test", text) {
        Err(e) => e.to_string(),
        Ok(c) => c.render(&TemplateData::new(n)).unwrap_err().to_string(),
    }
}

#[test]
fn compiled_templates_are_shareable_across_threads() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Templates>();
    check::<CompiledTemplate>();
}

#[test]
fn top_level_fields() {
    let t = Templates::default();
    let n = mixed();
    assert_eq!(
        render(
            &t,
            "{{ .Receiver }}|{{ .Status }}|{{ len .Alerts }}|{{ .ExternalURL }}",
            &n
        ),
        // Alertmanager regexp-quotes the receiver name
        r"ops\.team|firing|3|http://argus.example:9093"
    );
    let mut all_resolved = mixed();
    for a in &mut all_resolved.alerts {
        a.resolved = true;
    }
    assert_eq!(render(&t, "{{ .Status }}", &all_resolved), "resolved");
}

#[test]
fn alert_fields_and_the_firing_and_resolved_lists() {
    let t = Templates::default();
    let n = mixed();
    assert_eq!(
        render(
            &t,
            "{{ range .Alerts.Firing }}{{ .Labels.instance }} {{ end }}/{{ range .Alerts.Resolved }}{{ .Labels.instance }}{{ end }}/{{ len .Alerts.Firing }}",
            &n
        ),
        "web-1 web-2 /db-1/2"
    );
    let a = "{{ with index .Alerts 2 }}{{ .Status }}|{{ .Fingerprint }}|{{ .GeneratorURL }}|{{ .StartsAt }}|{{ .EndsAt.Format \"15:04\" }}{{ end }}";
    assert_eq!(
        render(&t, a, &n),
        "resolved|00abcdef01234567|http://prom:9090/graph?g0.expr=up&g0.tab=1|2024-05-01 10:00:00 +0000 UTC|11:30"
    );
    // a firing alert has no end: Go's zero time
    assert_eq!(
        render(
            &t,
            "{{ with index .Alerts 0 }}{{ .EndsAt }}|{{ .EndsAt.IsZero }}|{{ .StartsAt.IsZero }}{{ end }}",
            &n
        ),
        "0001-01-01 00:00:00 +0000 UTC|true|false"
    );
}

#[test]
fn key_value_sets_and_their_methods() {
    let t = Templates::default();
    let n = mixed();
    // common labels: every alert has the same value
    assert_eq!(
        render(
            &t,
            "{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}",
            &n
        ),
        "alertname=DiskFull;severity=critical;"
    );
    // alertname sorts first, the rest by name
    let n1 = Notification {
        alerts: vec![alert(
            &[("zone", "b"), ("alertname", "X"), ("app", "a")],
            &[],
            false,
        )],
        ..mixed()
    };
    assert_eq!(
        render(
            &t,
            "{{ (index .Alerts 0).Labels.Names | join \",\" }} {{ (index .Alerts 0).Labels.Values | join \",\" }}",
            &n1
        ),
        "alertname,app,zone X,a,b"
    );
    assert_eq!(
        render(
            &t,
            "{{ .CommonLabels.SortedPairs.Names | join \" \" }}/{{ .CommonLabels.SortedPairs.Values | join \" \" }}",
            &n
        ),
        "alertname severity/DiskFull critical"
    );
    assert_eq!(
        render(
            &t,
            "{{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Names | join \",\" }}{{ end }}|{{ len (.CommonLabels.Remove (stringSlice \"alertname\" \"severity\")) }}",
            &n
        ),
        "severity|0"
    );
    // a missing label reads as "", index works too
    assert_eq!(
        render(
            &t,
            "[{{ .CommonLabels.nope }}][{{ index .CommonLabels \"severity\" }}][{{ .CommonAnnotations.summary }}]",
            &n
        ),
        "[][critical][]"
    );
    assert_eq!(
        render(&t, "{{ .GroupLabels.String }}", &n),
        "alertname=DiskFull"
    );
}

#[test]
fn alertmanager_subject() {
    let t = Templates::default();
    let n = mixed();
    let subject = "{{ template \"__subject\" . }}";
    // severity is common but not a group label: it goes in parentheses
    assert_eq!(render(&t, subject, &n), "[FIRING:2] DiskFull (critical)");
    let mut resolved = mixed();
    for a in &mut resolved.alerts {
        a.resolved = true;
    }
    assert_eq!(
        render(&t, subject, &resolved),
        "[RESOLVED] DiskFull (critical)"
    );
    // nothing beyond the group labels in common: Alertmanager leaves a trailing space
    let one = Notification {
        alerts: vec![alert(&[("alertname", "DiskFull")], &[], false)],
        ..mixed()
    };
    assert_eq!(render(&t, subject, &one), "[FIRING:1] DiskFull ");
}

#[test]
fn alertmanager_text_alert_list_and_url() {
    let t = Templates::default();
    let n = Notification {
        alerts: vec![alert(
            &[("alertname", "A"), ("job", "node")],
            &[("summary", "s")],
            false,
        )],
        ..mixed()
    };
    assert_eq!(
        render(&t, "{{ template \"__text_alert_list\" .Alerts }}", &n),
        "Labels:\n - alertname = A\n - job = node\nAnnotations:\n - summary = s\nSource: http://prom:9090/graph?g0.expr=up&g0.tab=1\n"
    );
    assert_eq!(
        render(&t, "{{ template \"__alertmanagerURL\" . }}", &n),
        "http://argus.example:9093/#/alerts?receiver=ops%5C.team"
    );
}

#[test]
fn string_functions() {
    let t = Templates::default();
    let n = mixed();
    let cases: &[(&str, &str)] = &[
        ("{{ toUpper \"disk full\" }}", "DISK FULL"),
        ("{{ \"Disk FULL\" | toLower }}", "disk full"),
        (
            "{{ title \"hELLO wORLD, it's me\" }}",
            "Hello World, It's Me",
        ),
        ("[{{ trimSpace \"  a b \\n\" }}]", "[a b]"),
        ("{{ stringSlice \"a\" \"b\" \"c\" | join \"-\" }}", "a-b-c"),
        (
            "{{ match \"^web-[0-9]+$\" \"web-12\" }} {{ match \"^web$\" \"web-12\" }}",
            "true false",
        ),
        (
            "{{ reReplaceAll \"^(.*):[0-9]+$\" \"$1\" \"host.example:9100\" }}",
            "host.example",
        ),
        ("{{ urlUnescape \"a%20b+c%2Fd\" }}", "a b c/d"),
        ("{{ \"a b&c\" | urlquery }}", "a+b%26c"),
        ("{{ printf \"%s=%d\" \"n\" 3 }}", "n=3"),
        (
            "{{ if and (eq .Status \"firing\") (gt (len .Alerts) 2) }}yes{{ end }}",
            "yes",
        ),
        // text templates print safeHtml's argument as is, and html too
        ("{{ safeHtml \"<b>\" }}", "<b>"),
    ];
    for (text, want) in cases {
        assert_eq!(&render(&t, text, &n), want, "{text}");
    }
}

#[test]
fn time_functions_and_methods() {
    let t = Templates::default();
    let n = mixed();
    let cases: &[(&str, &str)] = &[
        (
            "{{ date \"2006-01-02 15:04\" (index .Alerts 0).StartsAt }}",
            "2024-05-01 10:00",
        ),
        (
            "{{ ((index .Alerts 0).StartsAt.Add 28800e9).Format \"15:04\" }}",
            "18:00",
        ),
        (
            "{{ (tz \"Asia/Shanghai\" (index .Alerts 0).StartsAt).Format \"2006-01-02 15:04 -0700 MST\" }}",
            "2024-05-01 18:00 +0800 CST",
        ),
        (
            "{{ (tz \"UTC\" (index .Alerts 0).StartsAt).Format \"15:04 MST\" }}",
            "10:00 UTC",
        ),
        (
            "{{ with index .Alerts 2 }}{{ .EndsAt.Sub .StartsAt }}{{ end }}",
            "1h30m0s",
        ),
        (
            "{{ with index .Alerts 2 }}{{ .StartsAt.Before .EndsAt }} {{ .StartsAt.After .EndsAt }}{{ end }}",
            "true false",
        ),
        // `since` counts from the notification's time (2h after the start)
        ("{{ since (index .Alerts 0).StartsAt }}", "2h0m0s"),
        (
            "{{ since (index .Alerts 0).StartsAt | humanizeDuration }}",
            "2h 0m 0s",
        ),
        ("{{ humanizeDuration 90 }}", "1m 30s"),
    ];
    for (text, want) in cases {
        assert_eq!(&render(&t, text, &n), want, "{text}");
    }
    assert!(
        render_err(
            &t,
            "{{ tz \"Mars/Olympus\" (index .Alerts 0).StartsAt }}",
            &n
        )
        .contains("unknown time zone Mars/Olympus")
    );
}

#[test]
fn extra_fields_and_empty_texts() {
    let t = Templates::default();
    let n = mixed();
    let c = t.compile("sms", "to {{ .Phone }}: {{ .Status }}").unwrap();
    assert_eq!(
        c.render(&TemplateData::new(&n).with_extra("Phone", "+8613800000000"))
            .unwrap(),
        "to +8613800000000: firing"
    );
    let empty = t.compile("empty", "").unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.render(&TemplateData::new(&n)).unwrap(), "");
}

#[test]
fn html_templates_escape_what_they_print() {
    let t = Templates::default();
    let n = Notification {
        alerts: vec![alert(
            &[("alertname", "A<b>&\"x\"")],
            &[("description", "<i>it's</i> + more")],
            false,
        )],
        ..mixed()
    };
    let c = t
        .compile_html(
            "html",
            "<p>{{ (index .Alerts 0).Labels.alertname }}</p>{{ (index .Alerts 0).Annotations.description | safeHtml }}[{{ .CommonLabels.nope }}]",
        )
        .unwrap();
    assert_eq!(
        c.render(&TemplateData::new(&n)).unwrap(),
        "<p>A&lt;b&gt;&amp;&#34;x&#34;</p><i>it's</i> + more[]"
    );
    // the same text as a text template prints everything as is
    let plain = t
        .compile("text", "{{ (index .Alerts 0).Labels.alertname }}")
        .unwrap();
    assert_eq!(plain.render(&TemplateData::new(&n)).unwrap(), "A<b>&\"x\"");
}

#[test]
fn default_email_templates_render_a_mix() {
    let t = Templates::default();
    let n = mixed();
    let subject = render(&t, "{{ template \"email.default.subject\" . }}", &n);
    assert_eq!(subject, "[FIRING:2] DiskFull (critical)");

    let text = render(&t, "{{ template \"email.default.text\" . }}", &n);
    assert!(
        text.starts_with("[FIRING:2] DiskFull (critical)\n"),
        "{text}"
    );
    let firing = text.find("Firing (2):").expect("firing section");
    let resolved = text.find("Resolved (1):").expect("resolved section");
    assert!(firing < resolved, "{text}");
    for want in [
        "* DiskFull [critical]: disk / is 95% full",
        "Since: 2024-05-01 10:00:00 UTC",
        "Labels: alertname=DiskFull, instance=web-2, severity=critical",
        "From 2024-05-01 10:00:00 UTC to 2024-05-01 11:30:00 UTC",
        "View in Argus: http://argus.example:9093/#/alerts?receiver=ops%5C.team",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // the resolved alert is listed under Resolved only
    assert!(!text[..resolved].contains("db-1"), "{text}");

    let html = t
        .compile_html("html", "{{ template \"email.default.html\" . }}")
        .unwrap()
        .render(&TemplateData::new(&n))
        .unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<title>[FIRING:2] DiskFull (critical)</title>"));
    assert!(html.contains("[2] Firing") && html.contains("[1] Resolved"));
    assert!(html.contains("instance=web-1"));
    // the URL in the attribute is escaped for HTML
    assert!(html.contains("href=\"http://prom:9090/graph?g0.expr=up&amp;g0.tab=1\""));
    assert!(html.contains("#e6522c"), "firing colour");
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn default_wecom_and_sms_templates() {
    let t = Templates::default();
    let n = mixed();
    let md = render(&t, "{{ template \"wecom.default.message\" . }}", &n);
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[0],
        "## <font color=\"warning\">[FIRING:2]</font> DiskFull"
    );
    assert!(md.contains("> **DiskFull** <font color=\"warning\">critical</font>\n> disk / is 95% full\n> <font color=\"comment\">instance=web-1 · 2024-05-01 10:00:00 UTC</font>"), "{md}");
    assert!(
        md.contains("> <font color=\"info\">Resolved</font> **DiskFull** disk / is 91% full"),
        "{md}"
    );
    assert!(
        md.ends_with("[View in Argus](http://argus.example:9093/#/alerts?receiver=ops%5C.team)"),
        "{md}"
    );
    assert!(md.len() < 4096);

    let text = render(&t, "{{ template \"wecom.default.text\" . }}", &n);
    assert_eq!(
        text,
        "[FIRING:2] DiskFull (critical)\n\
         • DiskFull [critical]: disk / is 95% full (instance=web-1)\n\
         • DiskFull [critical]: disk / is 97% full (instance=web-2)\n\
         ✓ DiskFull resolved: disk / is 91% full (instance=db-1)\n\
         http://argus.example:9093/#/alerts?receiver=ops%5C.team"
    );

    let sms = render(&t, "{{ template \"sms.default.message\" . }}", &n);
    assert_eq!(sms, "[FIRING:2] DiskFull");
    let shared = Notification {
        alerts: vec![alert(
            &[("alertname", "NodeDown"), ("instance", "web-1")],
            &[("summary", "web-1 is down")],
            false,
        )],
        group_labels: labels(&[("alertname", "NodeDown")]),
        ..mixed()
    };
    let sms = render(&t, "{{ template \"sms.default.message\" . }}", &shared);
    assert_eq!(sms, "[FIRING:1] NodeDown: web-1 is down");
    assert!(!sms.contains('\n') && sms.chars().count() <= 70);

    // Alertmanager's WeChat default stays available for migrated configurations
    let wechat = render(&t, "{{ template \"wechat.default.message\" . }}", &n);
    assert!(
        wechat.starts_with("[FIRING:2] DiskFull (critical)\n"),
        "{wechat}"
    );
    assert!(wechat.contains("Alerts Firing:\nLabels:\n - alertname = DiskFull"));
    assert!(wechat.contains("Alerts Resolved:\nLabels:"));
}

#[test]
fn chinese_text_in_data_and_templates() {
    let t = Templates::default();
    let n = Notification {
        receiver: "运维组".into(),
        group_labels: labels(&[("alertname", "磁盘空间不足")]),
        alerts: vec![alert(
            &[
                ("alertname", "磁盘空间不足"),
                ("机房", "上海"),
                ("severity", "严重"),
            ],
            &[
                ("summary", "根分区使用率 95%"),
                ("description", "请尽快清理"),
            ],
            false,
        )],
        ..mixed()
    };
    assert_eq!(
        render(
            &t,
            "【告警】{{ .CommonLabels.alertname }}：{{ .CommonAnnotations.summary }}（{{ index .CommonLabels \"机房\" }}）",
            &n
        ),
        "【告警】磁盘空间不足：根分区使用率 95%（上海）"
    );
    assert_eq!(
        render(&t, "{{ template \"__subject\" . }}", &n),
        "[FIRING:1] 磁盘空间不足 (严重 上海)"
    );
    assert_eq!(
        render(
            &t,
            "{{ toUpper \"cpu 使用率 high\" }}|{{ title \"中文 abc\" }}|{{ len \"中文\" }}",
            &n
        ),
        "CPU 使用率 HIGH|中文 Abc|6"
    );
    assert_eq!(
        render(
            &t,
            "{{ reReplaceAll \"(\\\\p{Han}+)分区\" \"[$1]\" \"根分区\" }}",
            &n
        ),
        "[根]"
    );
    let md = render(&t, "{{ template \"wecom.default.message\" . }}", &n);
    assert!(md.contains("> **磁盘空间不足** <font color=\"warning\">严重</font>\n> 根分区使用率 95%\n> <font color=\"comment\">机房=上海"), "{md}");
    assert_eq!(
        render(&t, "{{ .Receiver }} {{ .Receiver | urlquery }}", &n),
        "运维组 %E8%BF%90%E7%BB%B4%E7%BB%84"
    );

    // a user template file in UTF-8 with Chinese defines
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("zh.tmpl"),
        "{{ define \"zh.标题\" }}【{{ if eq .Status \"firing\" }}告警{{ else }}恢复{{ end }}】{{ .GroupLabels.alertname }}{{ end }}\n",
    )
    .unwrap();
    let user = Templates::load(&["*.tmpl".into()], Some(dir.path())).unwrap();
    assert_eq!(
        render(&user, "{{ template \"zh.标题\" . }}", &n),
        "【告警】磁盘空间不足"
    );
}

#[test]
fn user_files_override_and_extend_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("tmpl");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("a.tmpl"),
        "{{ define \"__subject\" }}A:{{ .GroupLabels.alertname }}{{ end }}\n\
         {{ define \"team.footer\" }}-- ops{{ end }}",
    )
    .unwrap();
    // later files (glob order) win; an empty define does not replace a template
    std::fs::write(
        sub.join("b.tmpl"),
        "{{ define \"__subject\" }}B:{{ .GroupLabels.alertname }}{{ end }}\n\
         {{ define \"team.footer\" }}  {{ end }}",
    )
    .unwrap();
    std::fs::write(sub.join("notes.txt"), "{{ broken").unwrap();
    let t = Templates::load(
        &["tmpl/*.tmpl".into(), "missing/*.tmpl".into()],
        Some(dir.path()),
    )
    .unwrap();
    let n = mixed();
    // the default email subject calls the overridden __subject
    assert_eq!(
        render(&t, "{{ template \"email.default.subject\" . }}", &n),
        "B:DiskFull"
    );
    assert_eq!(render(&t, "{{ template \"team.footer\" . }}", &n), "-- ops");
    assert!(t.has("team.footer") && t.has("wecom.default.message"));
    // the defaults are untouched for another set
    assert_eq!(
        render(
            &Templates::default(),
            "{{ template \"email.default.subject\" . }}",
            &n
        ),
        "[FIRING:2] DiskFull (critical)"
    );
    // an absolute glob ignores the base directory
    let abs = format!("{}/a.tmpl", sub.display());
    let t = Templates::load(&[abs], Some(std::path::Path::new("/nonexistent"))).unwrap();
    assert_eq!(
        render(&t, "{{ template \"__subject\" . }}", &n),
        "A:DiskFull"
    );
    // defines in a channel text are seen by that text
    assert_eq!(
        render(
            &t,
            "{{ define \"x\" }}X{{ .Status }}{{ end }}{{ template \"x\" . }}",
            &n
        ),
        "Xfiring"
    );
}

#[test]
fn errors_name_the_template() {
    let t = Templates::default();
    let n = mixed();
    // parse errors: the channel field and the line
    let e = t
        .compile(
            "receiver \"ops\": email_configs[0].html",
            "line one\n{{ nope .Status }}",
        )
        .unwrap_err();
    assert!(matches!(e, NotifierError::Template { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("receiver \"ops\": email_configs[0].html")
            && msg.contains("line 2")
            && msg.contains("function \"nope\" not defined"),
        "{msg}"
    );
    // execution errors
    let msg = render_err(&t, "{{ .Nope }}", &n);
    assert!(
        msg.contains("test") && msg.contains("can't evaluate field Nope in type *template.Data"),
        "{msg}"
    );
    let msg = render_err(&t, "{{ range .Alerts }}{{ .Lables }}{{ end }}", &n);
    assert!(
        msg.contains("can't evaluate field Lables in type template.Alert"),
        "{msg}"
    );
    let msg = render_err(&t, "{{ template \"no.such\" . }}", &n);
    assert!(
        msg.contains("test") && msg.contains("template \"no.such\" not defined"),
        "{msg}"
    );
    let msg = render_err(&t, "{{ reReplaceAll \"(\" \"\" \"x\" }}", &n);
    assert!(msg.contains("error parsing regexp"), "{msg}");

    // a bad user file: its path, its line and the define
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.tmpl"),
        "{{ define \"ok\" }}fine{{ end }}\n\n{{ define \"broken\" }}\n{{ .Status | nofunc }}\n{{ end }}",
    )
    .unwrap();
    let msg = Templates::load(&["bad.tmpl".into()], Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bad.tmpl")
            && msg.contains("line 4")
            && msg.contains("\"broken\"")
            && msg.contains("function \"nofunc\" not defined"),
        "{msg}"
    );
    // an execution error inside a user define names the file and the define
    std::fs::write(
        dir.path().join("bad.tmpl"),
        "{{ define \"mine\" }}{{ .CommonLabels.Remove \"x\" }}{{ end }}",
    )
    .unwrap();
    let user = Templates::load(&["bad.tmpl".into()], Some(dir.path())).unwrap();
    let msg = render_err(&user, "{{ template \"mine\" . }}", &n);
    assert!(
        msg.contains("bad.tmpl") && msg.contains("executing \"mine\"") && msg.contains("[]string"),
        "{msg}"
    );
    // a template that calls itself stops
    let msg = render_err(
        &t,
        "{{ define \"loop\" }}{{ template \"loop\" . }}{{ end }}{{ template \"loop\" . }}",
        &n,
    );
    assert!(msg.contains("exceeded maximum template depth"), "{msg}");
}

#[test]
fn go_template_sets_define_block_and_template() {
    let t = Templates::default();
    let n = mixed();
    // block defines a template and runs it in place
    assert_eq!(
        render(
            &t,
            "{{ block \"b\" .Status }}<{{ . }}>{{ end }}|{{ template \"b\" \"again\" }}",
            &n
        ),
        "<firing>|<again>"
    );
    // {{template "x"}} without a pipeline runs with nil data
    assert_eq!(render(&t, "{{ template \"__alertmanager\" }}", &n), "Argus");
    // a define's variables are its own
    let msg = render_err(&t, "{{ $x := 1 }}{{ define \"v\" }}{{ $x }}{{ end }}", &n);
    assert!(msg.contains("undefined variable \"$x\""), "{msg}");
    // define only at the top level
    let msg = render_err(&t, "{{ if true }}{{ define \"x\" }}{{ end }}{{ end }}", &n);
    assert!(msg.contains("unexpected <define>"), "{msg}");
    // html output of called templates is escaped once
    let html = t
        .compile_html("html", "{{ template \"email.default.html\" . }}")
        .unwrap()
        .render(&TemplateData::new(&n))
        .unwrap();
    assert!(!html.contains("&amp;amp;"), "{html}");
}
