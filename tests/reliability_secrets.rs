//! Secrets: a full plan/apply/destroy cycle with `-v`, `--json`, saved plans
//! and error paths never prints the API token or a `secret` binding's value —
//! not on stdout, not on stderr, not in the plan file, not in the edge's log.

mod reliability_support;

use std::time::{SystemTime, UNIX_EPOCH};

use reliability_support::{Edge, Stack, text};

const SECRET_VAR: &str = "CFDO_RELIABILITY_SECRET";

/// A value unique to this run; the part that would show through any escaping.
fn unique(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{label}{nanos:x}{}", std::process::id())
}

#[test]
fn no_output_of_a_full_cycle_holds_the_token_or_a_secret_value() {
    // Some faults, so that the verbose logs hold retries of failed requests too.
    let edge = Edge::start(&["--fail-rate", "0.1"]);
    let stack = Stack::new("secrets", 1, 1);
    stack.write(
        "secrets",
        "1",
        0,
        &[&format!("API_KEY = {{ secret = \"{SECRET_VAR}\" }}")],
    );
    let manifest = stack.manifest();
    let (api, token, account) = edge.env();
    let core1 = unique("firstsecret");
    let core2 = unique("secondsecret");
    let bad_token = unique("wrongtoken");
    // Quotes, a backslash and non-ASCII around the unique part, to catch escaping bugs.
    let secret1 = format!("s3\"cr\\et ü {core1}");
    let secret2 = format!("{core2}'\n\"");
    let plan_file = stack.dir.path().join("plan.json");
    let plan_path = plan_file.to_string_lossy().to_string();

    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut run = |label: &str, args: &[&str], env: &[(&str, &str)], expect_ok: bool| {
        let out = edge.cfdo_env(args, &manifest, env);
        let t = text(&out);
        assert_eq!(
            out.status.success(),
            expect_ok,
            "{label}: exit {:?}: {t}",
            out.status.code()
        );
        outputs.push((label.to_string(), t.clone()));
        t
    };
    let with1: &[(&str, &str)] = &[(SECRET_VAR, &secret1)];
    let with2: &[(&str, &str)] = &[(SECRET_VAR, &secret2)];

    run("plan -v", &["-v", "plan"], with1, true);
    run("plan --json", &["--json", "plan"], with1, true);
    run(
        "plan --out",
        &["-v", "plan", "--out", &plan_path],
        with1,
        true,
    );
    run(
        "apply saved plan",
        &["-vv", "--json", "apply", "--yes", &plan_path],
        with1,
        true,
    );
    // The secret changed since the plan was saved: the saved plan is refused.
    let stale = run(
        "apply stale plan",
        &["-v", "apply", "--yes", &plan_path],
        with2,
        false,
    );
    assert!(stale.contains("secret"), "{stale}");
    run("apply new secret", &["-v", "apply", "--yes"], with2, true);
    // The secret did reach the account: the edge stores it for workerd.
    let state = std::fs::read_to_string(edge.state_dir().join("state.json")).unwrap_or_default();
    assert!(state.contains(&core2), "the secret was not delivered");
    let plan = run(
        "plan after apply",
        &["--json", "plan", "--detailed-exitcode"],
        with2,
        true,
    );
    assert!(!plan.contains("\"action\":\"update\""), "{plan}");
    // Error paths: the variable unset, a wrong token, a worker that fails to start.
    let unset = run("plan without the secret", &["-v", "plan"], &[], true);
    assert!(
        unset.contains(&format!("{SECRET_VAR} is not set here")),
        "{unset}"
    );
    let unset = run(
        "apply without the secret",
        &["-v", "apply", "--yes"],
        &[],
        false,
    );
    assert!(unset.contains(SECRET_VAR), "{unset}");
    let cloudflare = |t: &str| {
        vec![
            ("CLOUDFLARE_API_BASE_URL", api.clone()),
            ("CLOUDFLARE_ACCOUNT_ID", account.clone()),
            ("CLOUDFLARE_API_TOKEN", t.to_string()),
            (SECRET_VAR, secret2.clone()),
        ]
    };
    let env_bad = cloudflare(&bad_token);
    let env_bad: Vec<(&str, &str)> = env_bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let denied = run(
        "wrong token",
        &["-vv", "--target", "cloudflare", "apply", "--yes"],
        &env_bad,
        false,
    );
    assert!(denied.to_lowercase().contains("auth"), "{denied}");
    let env_good = cloudflare(&token);
    let env_good: Vec<(&str, &str)> = env_good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run(
        "token from the environment",
        &["-vv", "--json", "--target", "cloudflare", "plan"],
        &env_good,
        true,
    );
    std::fs::write(
        stack.dir.path().join("src/h0.js"),
        "throw new Error(\"startup fails\");\nexport class Counter0 {}\nexport class Extra0 {}\nexport default {};\n",
    )
    .expect("break h0");
    let broken = run(
        "upload refused",
        &["-vv", "--json", "apply", "--yes"],
        &env_good,
        false,
    );
    assert!(broken.contains("10021"), "{broken}");
    run(
        "destroy",
        &["-vv", "--json", "destroy", "--yes"],
        with2,
        true,
    );

    let mut places = outputs;
    places.push((
        "plan file".to_string(),
        std::fs::read_to_string(&plan_file).expect("plan file"),
    ));
    places.push(("edge.log".to_string(), edge.log()));
    places.push(("cfdo edge logs".to_string(), text(&edge.edge(&["logs"]))));
    let needles = [
        ("the API token", token.as_str()),
        ("a wrong token", bad_token.as_str()),
        ("the first secret", core1.as_str()),
        ("the second secret", core2.as_str()),
    ];
    assert!(
        places.iter().any(|(_, c)| c.contains("cfdo: retrying ")),
        "no retry was logged"
    );
    let mut leaks = Vec::new();
    let mut bytes = 0;
    for (place, content) in &places {
        bytes += content.len();
        for (what, needle) in needles {
            if content.contains(needle) {
                leaks.push(format!("{what} appears in {place}"));
            }
        }
    }
    assert!(leaks.is_empty(), "leaks: {leaks:#?}");
    eprintln!(
        "secrets: {} outputs ({bytes} bytes) searched for the token, a wrong token and two secret values: 0 found",
        places.len()
    );
}
