use super::*;

fn miner() -> TemplateMiner {
    TemplateMiner::new(TemplateConfig::default())
}

#[test]
fn groups_lines_of_one_event_and_separates_events() {
    let mut m = miner();
    let a = m
        .observe("PacketResponder 1 for block blk_3886 terminating")
        .id;
    let b = m
        .observe("Received block blk_-69 of size 67108864 from /10.250.19.102")
        .id;
    assert_ne!(a, b);
    let c = m.observe("PacketResponder 0 for block blk_-12 terminating");
    assert_eq!(c.id, a);
    assert!(!c.is_new && !c.updated);
    assert_eq!(
        c.template,
        "PacketResponder <*> for block blk_<*> terminating"
    );
    assert_eq!(c.params().collect::<Vec<_>>(), ["0", "-12"]);
    assert_eq!(m.len(), 2);
}

#[test]
fn ids_stay_stable_when_a_template_generalises() {
    let mut m = miner();
    let first = m.observe("Connection to db01 timed out after 300 ms");
    assert!(first.is_new);
    let id = first.id;
    let g = m.observe("Connection to 10.0.0.7 timed out after 120 ms");
    assert_eq!((g.id, g.is_new, g.updated), (id, false, true));
    assert_eq!(g.template, "Connection to <*> timed out after <*> ms");
    assert_eq!(
        m.template(id),
        Some("Connection to <*> timed out after <*> ms")
    );
    assert!(
        !m.observe("Connection to cache-2 timed out after 9 ms")
            .updated
    );
}

#[test]
fn words_need_variants_and_the_first_word_never_merges() {
    let mut m = miner();
    let cups = m.observe("cupsd startup succeeded").id;
    let sshd = m.observe("sshd startup succeeded").id;
    let ntpd = m.observe("ntpd startup succeeded").id;
    assert!(cups != sshd && sshd != ntpd && cups != ntpd);
    let alice = m.observe("session opened for user alice").id;
    let bob = m.observe("session opened for user bob");
    assert!(bob.is_new);
    let bob = bob.id;
    let carol = m.observe("session opened for user carol");
    assert_eq!(carol.id, alice, "the oldest variant survives");
    assert!(carol.updated);
    assert_eq!(carol.merged, [bob]);
    assert_eq!(carol.template, "session opened for user <*>");
    assert_eq!(m.resolve(bob), Some(alice));
    assert_eq!(m.template(bob), None);
}

#[test]
fn variable_length_parameters_share_a_template() {
    let mut m = miner();
    let a = m
        .observe(
            "host1.example.com:443 close, 1190 bytes sent, 1671 bytes received, lifetime 00:02",
        )
        .id;
    let b = m.observe("www.x.org:80 close, 451 bytes (451 B) sent, 2151 bytes (2.1 KB) received, lifetime <1 sec").id;
    assert_eq!(b, a);
    let b2 = m.observe("mail.y.net:443 close, 1190 bytes (1.16 KB) sent, 1671 bytes (1.63 KB) received, lifetime 00:02");
    assert_eq!(b2.id, a);
    assert_eq!(
        b2.template,
        "<*> close, <*> bytes <*> sent, <*> bytes <*> received, lifetime <*>"
    );
    assert!(b2.params().any(|p| p == "(1.16 KB)"));
    // A different event of another length does not join.
    assert_ne!(m.observe("Registered BlockManager").id, a);
    assert_ne!(m.observe("Trying to register BlockManager").id, a);
}

#[test]
fn evicts_the_least_recently_seen_template_at_the_cap() {
    let mut m = TemplateMiner::new(TemplateConfig {
        max_templates: 3,
        ..TemplateConfig::default()
    });
    let a = m.observe("alpha one").id;
    let b = m.observe("beta two words").id;
    let c = m.observe("gamma three words here").id;
    assert_eq!(m.observe("alpha one").id, a);
    let d = m.observe("delta four words here now");
    assert_eq!(d.evicted, Some(b));
    let d = d.id;
    assert_eq!(m.len(), 3);
    assert_eq!(m.template(b), None);
    assert_eq!(m.resolve(b), None);
    let ids: Vec<TemplateId> = m.templates().iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [a, c, d]);
    assert_ne!(m.observe("beta two words").id, b, "ids are never reused");
}

#[test]
fn same_lines_give_same_ids() {
    let lines: Vec<String> = (0..500)
        .map(|i| match i % 5 {
            0 => format!("user u{} logged in from 10.0.{}.{}", i % 7, i % 3, i),
            1 => format!("job {i} finished in {} ms", i * 3),
            2 => format!(
                "cache {} miss for key k{i}",
                ["hit", "warm", "cold", "lru"][i % 4]
            ),
            3 => format!("worker-{} heartbeat", i % 9),
            _ => format!(
                "request {} /api/v{}/items took {}ms status={}",
                ["GET", "POST"][i % 2],
                i % 3,
                i,
                200 + i % 5
            ),
        })
        .collect();
    let run = || {
        let mut m = miner();
        let ids: Vec<TemplateId> = lines.iter().map(|l| m.observe(l).id).collect();
        (
            ids,
            m.templates()
                .iter()
                .map(|(i, t)| (*i, t.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn adversarial_lines_cost_bounded_time_and_memory() {
    let mut m = TemplateMiner::new(TemplateConfig {
        max_templates: 50,
        ..TemplateConfig::default()
    });
    // Identical lines: one template.
    for _ in 0..10_000 {
        m.observe("the same line again");
    }
    assert_eq!(m.len(), 1);
    // Empty and blank lines get a template too.
    let empty = m.observe("").id;
    assert_eq!(m.observe("   \t ").id, empty);
    // 10k distinct tokens on one line: capped.
    let wide: String = (0..10_000).map(|i| format!("w{i}x ")).collect();
    let w = m.observe(&wide);
    assert!(w.template.split(' ').count() <= TemplateConfig::default().max_tokens);
    assert!(w.params().last().is_some_and(|p| p.ends_with("w9999x")));
    // A 1 MB line without spaces, and one with.
    let big = "x".repeat(1 << 20);
    assert_eq!(m.observe(&big).template, "<*>");
    let spaced = "ab ".repeat(350_000);
    assert!(m.observe(&spaced).template.ends_with("<*>"));
    // Non-ASCII, including multi-byte characters next to digits and at the byte cap.
    let u = m.observe("Ошибка соединения 42 раз — 日本語テキスト é5 ✓");
    assert_eq!(
        u.template,
        "Ошибка соединения <*> раз — 日本語テキスト é<*> ✓"
    );
    let cut = "é".repeat(20_000);
    m.observe(&cut);
    // Many distinct shapes: never more than the cap.
    for i in 0..5_000 {
        let line: String = (0..(i % 13 + 1))
            .map(|j| {
                format!(
                    "t{}{} ",
                    (b'a' + (i * 7 + j) as u8 % 26) as char,
                    "q".repeat(j % 3)
                )
            })
            .collect();
        m.observe(&line);
        assert!(m.len() <= 50);
    }
}

#[test]
fn masks_before_matching() {
    let mut m = miner();
    let a = m
        .observe(
            "GET /api/users/42 from 192.168.0.1 id=7f3a9c2e-1b2c-4d5e-8f90-123456789abc took 12ms",
        )
        .id;
    let b = m.observe(
        "GET /api/orders/9 from 10.1.1.1 id=0b1c2d3e-1b2c-4d5e-8f90-abcdefabcdef took 3ms",
    );
    assert_eq!(b.id, a);
    assert!(!b.updated, "masked positions need no generalisation");
    assert_eq!(b.template, "GET /<*> from <*> id=<*> took <*>");
}

#[test]
fn fields_and_flags_are_part_of_the_event() {
    let mut m = miner();
    let a = m.observe("authentication failure; uid=0 rhost=10.0.0.1").id;
    assert_eq!(
        m.observe("authentication failure; uid=0 rhost=10.0.0.2").id,
        a
    );
    // An extra key=value field is another event, not a longer parameter.
    assert_ne!(
        m.observe("authentication failure; uid=0 rhost=10.0.0.2 user=root")
            .id,
        a
    );
    // A quoted value with a space in it is one longer parameter.
    let b = m.observe("acquire lock=1, tag=\"View Lock\", uid=3").id;
    let c = m.observe("acquire lock=2, tag=\"Audio\", uid=4");
    assert_eq!(c.id, b);
    assert_eq!(c.template, "acquire lock=<*>, <*> uid=<*>");
    // Boolean values are states, not parameters.
    let on = m.observe("collapse force=true delayed=false").id;
    assert_ne!(m.observe("collapse force=false delayed=false").id, on);
}

#[test]
fn partly_masked_tokens_differ_in_constants_or_in_variables() {
    let mut m = miner();
    // A word outside the identifier holding the number is part of the event.
    let plain = m.observe("session opened for user root by (uid=0)").id;
    let login = m.observe("session opened for user root by LOGIN(uid=0)");
    assert_ne!(login.id, plain);
    assert_eq!(
        login.template,
        "session opened for user root by LOGIN(uid=<*>)"
    );
    let keys = m.observe("getRecentTasks: num=5,flags=0x1ff").id;
    assert_ne!(
        m.observe("getRecentTasks: topActivity=ComponentInfo{a/b}")
            .id,
        keys
    );
    // Another spelling of one identifier is another value of the variable.
    let rdd = m.observe("Block rdd_4_1 stored as bytes").id;
    let piece = m.observe("Block broadcast_2_piece0 stored as bytes");
    assert_eq!((piece.id, piece.updated), (rdd, true));
    assert_eq!(piece.template, "Block <*> stored as bytes");
}

#[test]
fn a_word_inside_a_shared_frame_is_a_value_of_the_variable() {
    let mut m = miner();
    let path = m
        .observe("ciod: LOGIN chdir(/p/gb1/stella/RAPTOR/2183) failed")
        .id;
    let pwd = m.observe("ciod: LOGIN chdir(pwd) failed");
    assert_eq!((pwd.id, pwd.updated), (path, true));
    assert_eq!(pwd.template, "ciod: LOGIN <*> failed");
    // Without a shared frame a name with a digit is still a name.
    let socks = m
        .observe("proxy.example.org:5070 open through proxy SOCKS5")
        .id;
    assert_ne!(
        m.observe("proxy.example.org:5070 open through proxy HTTPS")
            .id,
        socks
    );
}

#[test]
fn a_position_found_variable_absorbs_its_word_variants() {
    let mut m = miner();
    let first = m.observe("domain root_domain is no longer served").id;
    let second = m.observe("domain cluster_backup is no longer served");
    assert!(second.is_new);
    let second = second.id;
    let third = m.observe("domain root3_domain is no longer served");
    assert_eq!(third.id, first, "the oldest variant survives");
    assert!(third.updated);
    assert_eq!(third.merged, [second]);
    assert_eq!(third.template, "domain <*> is no longer served");
    assert_eq!(m.resolve(second), Some(first));
    assert_eq!(
        m.observe("domain cluster_backup is no longer served").id,
        first
    );
    assert_eq!(m.len(), 1);
}

#[test]
fn an_optional_clause_is_another_event() {
    let mut m = miner();
    let short = m
        .observe("1 ddr error(s) (dcr 0x0155) detected and corrected")
        .id;
    let long = m.observe("2 ddr error(s) (dcr 0x0155) detected and corrected over 27 seconds");
    assert_ne!(long.id, short);
    assert!(long.merged.is_empty());
    let pci = m.observe("PCI: Probing PCI hardware").id;
    assert_ne!(m.observe("PCI: Probing PCI hardware (bus 00)").id, pci);
    // A longer value with no words of its own still joins (see variable_length_parameters).
    let sent = m.observe("close, 1190 bytes sent").id;
    assert_eq!(m.observe("close, 451 bytes (451 B) sent").id, sent);
}
