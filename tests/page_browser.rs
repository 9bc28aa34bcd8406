//! The technician's page in a real browser (headless Chromium through chromedriver) against a
//! running agent fed by the test RTSP server, a real mosquitto and the bundled model: the
//! overview lists the camera, the camera view draws the model's boxes where the detections say,
//! and a zone drawn by clicking four points is saved in the file, audited, and produces zone
//! events; a camera is probed and added from "Add a camera", and streams. Screenshots go to
//! `target/tmp/page-screenshots/` for a person to look at.

mod common;

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use serde_json::Value;

use common::agent::{Agent, AgentSetup, clip_server, expect, topic};
use common::browser::Browser;
use common::http::lan_address;
use common::mosquitto::{Mosquitto, Subscriber, free_port};
use common::serial;

const WAIT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A pixel under the stroke of every box drawn on the view's canvas, with the colour its class
/// is drawn in: `[[r, g, b], [r, g, b], class]` per object. Of several points on the box's left
/// and right edges, the first in its class's colour (or the left middle one when none is).
const BOX_PIXELS: &str = r#"
const view = window.watchpost.view;
const canvas = document.getElementById("view");
const ctx = canvas.getContext("2d");
const colours = { person: [255, 59, 59], vehicle: [59, 157, 255], other: [255, 210, 59] };
// Where the frame lies on the canvas (all of it, or the model's input within its bars).
const p = window.watchpost.placement();
const near = (a, b) => a.every((v, i) => Math.abs(v - b[i]) <= 40);
return view.objects.map((o) => {
  const colour = colours[o.class] || colours.other;
  // The pixels under the box's left and right strokes at a few heights (the stroke is at
  // least 2 px wide, so the pixel at the floor lies under it whatever its sub-pixel position):
  // the first in the box's colour, or the left middle one. Several, because in a crowd
  // another box's stroke or label may be drawn over any one of them.
  const left = p.ox + o.bbox[0] * p.fw;
  const right = p.ox + (o.bbox[0] + o.bbox[2]) * p.fw;
  const samples = [];
  for (const f of [0.5, 0.3, 0.7, 0.9]) {
    const y = Math.min(canvas.height - 1, Math.floor(p.oy + (o.bbox[1] + f * o.bbox[3]) * p.fh));
    for (const edge of [left, right]) {
      const x = Math.min(canvas.width - 1, Math.floor(edge));
      samples.push(Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
    }
  }
  const pixel = samples.find((s) => near(s, colour)) || samples[0];
  return [pixel, colour, o.class];
});
"#;

fn close(a: &Value, b: &Value) -> bool {
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    a.iter()
        .zip(b)
        .all(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 40.0)
}

#[test]
fn the_technician_sees_the_camera_and_draws_a_zone_on_it() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let port = free_port();
    let mut setup = AgentSetup::one_camera(server.url("cam0"));
    setup.tables = format!("[local]\nlisten = \"127.0.0.1:{port}\"\n");
    let events = Subscriber::connect(broker.port(), &topic("cam0/events"));
    let agent = Agent::start(&broker, &setup);
    let base = format!("http://127.0.0.1:{port}");

    runtime().block_on(async {
        let browser = Browser::start("technician").await;
        let c = &browser.client;

        // The overview: the camera, streaming, with a live thumbnail.
        c.goto(&format!("{base}/")).await.unwrap();
        browser
            .wait_for(
                "the overview shows cam0 streaming with a thumbnail",
                r#"const card = document.querySelector('article[data-camera="cam0"]');
                   return !!card && !!card.querySelector(".state-streaming")
                     && Number(card.querySelector("canvas").dataset.frames) > 0;"#,
                WAIT,
            )
            .await;
        let version = browser.text("#version").await;
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        browser.screenshot("overview").await;

        // The camera view: pictures keep coming, with the model's boxes drawn where the
        // detections say.
        c.goto(&format!("{base}/cameras/cam0")).await.unwrap();
        browser
            .wait_for(
                "the camera view shows frames with objects",
                r#"return !!window.watchpost && !!window.watchpost.view
                     && window.watchpost.view.objects.length > 0
                     && Number(document.getElementById("view").dataset.frames) >= 3;"#,
                WAIT,
            )
            .await;
        let pixels = c.execute(BOX_PIXELS, Vec::new()).await.unwrap();
        let pixels = pixels.as_array().unwrap();
        assert!(!pixels.is_empty());
        for entry in pixels {
            assert!(
                close(&entry[0], &entry[1]),
                "a {} box is not drawn where its detection says: {pixels:?}",
                entry[2]
            );
        }
        browser.screenshot("camera-view").await;
        // With the boxes turned off, those pixels are the picture's again.
        browser.click("#show-boxes").await;
        let hidden = c.execute(BOX_PIXELS, Vec::new()).await.unwrap();
        assert!(
            hidden
                .as_array()
                .unwrap()
                .iter()
                .any(|entry| !close(&entry[0], &entry[1])),
            "boxes still drawn with the toggle off: {hidden:?}"
        );
        browser.click("#show-boxes").await;

        // A zone drawn by clicking four points, named and saved.
        let canvas = c.find(Locator::Id("view")).await.unwrap();
        let (_, _, width, height) = canvas.rectangle().await.unwrap();
        let corners = [[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]];
        for [fx, fy] in corners {
            let click = MouseActions::new("mouse".to_owned())
                .then(PointerAction::MoveToElement {
                    element: canvas.clone(),
                    duration: None,
                    x: ((fx - 0.5) * width).round(),
                    y: ((fy - 0.5) * height).round(),
                })
                .then(PointerAction::Down {
                    button: MOUSE_BUTTON_LEFT,
                })
                .then(PointerAction::Up {
                    button: MOUSE_BUTTON_LEFT,
                });
            c.perform_actions(click).await.unwrap();
        }
        let drawn = c
            .execute("return window.watchpost.draft.points;", Vec::new())
            .await
            .unwrap();
        assert_eq!(drawn.as_array().unwrap().len(), 4, "{drawn}");
        browser.type_into("#shape-name", "yard").await;
        browser.screenshot("zone-drawn").await;
        browser.click("#save-shape").await;
        browser
            .wait_for(
                "the page says the zone is saved",
                r#"const r = document.getElementById("save-result");
                   return r.className === "bad" ? "failed: " + r.textContent
                     : r.textContent.includes("saved zone yard") && r.textContent;"#,
                WAIT,
            )
            .await;
        let said = browser.text("#save-result").await;
        assert!(said.contains("applied live"), "{said}");
        // The picture shows the zone once the camera runs with it.
        browser
            .wait_for(
                "the view draws the new zone",
                r#"return window.watchpost.view.zones.some((z) => z.name === "yard");"#,
                WAIT,
            )
            .await;
        browser.screenshot("zone-saved").await;

        // In the file, within a pixel of where the clicks were.
        let text = std::fs::read_to_string(agent.config_path()).unwrap();
        let file: toml::Table = text.parse().unwrap();
        let zone = file["cameras"][0]["zones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["name"].as_str() == Some("yard"))
            .unwrap_or_else(|| panic!("no zone yard in the file:\n{text}"));
        let points = zone["points"].as_array().unwrap();
        assert_eq!(points.len(), 4, "{text}");
        for (point, [fx, fy]) in points.iter().zip(corners) {
            let x = point[0].as_float().unwrap();
            let y = point[1].as_float().unwrap();
            assert!(
                (x - fx).abs() <= 1.5 / width && (y - fy).abs() <= 1.5 / height,
                "clicked at [{fx}, {fy}], saved {point} (canvas {width}×{height} px)\n{text}"
            );
        }
        // Audited with the page's user.
        let audit = std::fs::read_to_string(agent.state_dir().join("audit.log")).unwrap();
        assert!(
            audit.contains("page shape save") && audit.contains("page@local"),
            "{audit}"
        );
        browser.close().await;
    });

    // And the agent watches it: people in the clip enter the zone.
    expect(
        events.wait_for(
            |m| {
                let event = m.json();
                event["type"] == "zone_enter" && event["zone"] == "yard"
            },
            WAIT,
        ),
        "a zone_enter event for the zone drawn on the page",
        &agent,
    );
}

/// Off loopback, the page asks for the password first; a wrong one is refused; with the right
/// one the camera view works; no password reaches the page; a POST without the CSRF token is
/// refused.
#[test]
fn from_the_network_the_page_needs_the_password() {
    const PAGE_PASSWORD: &str = "night-shift-4d1";
    const CAMERA_PASSWORD: &str = "rtsp-pass-8c2";
    let _serial = serial();
    let lan = lan_address();
    let server = clip_server();
    let broker = Mosquitto::start();
    let port = free_port();
    let mut setup = AgentSetup::one_camera(server.url("cam0"));
    let _secrets = setup.listen_on_the_network(port, PAGE_PASSWORD);
    setup.camera_extra = format!("username = \"admin\"\npassword = \"{CAMERA_PASSWORD}\"\n");
    let agent = Agent::start(&broker, &setup);
    let base = format!("http://{lan}:{port}");

    runtime().block_on(async {
        let browser = Browser::start("login").await;
        let c = &browser.client;
        // The agent may still be starting: the login form comes once it listens.
        browser
            .wait_for(
                "the login form",
                &format!(
                    r#"if (!document.getElementById("password")) {{
                         window.location.href = "{base}/cameras/cam0"; return false; }}
                       return true;"#
                ),
                WAIT,
            )
            .await;
        let url = c.current_url().await.unwrap();
        assert_eq!(url.path(), "/login", "{url}");
        browser.screenshot("login").await;

        browser.type_into("#password", "not-the-password").await;
        browser.click("form button[type=submit]").await;
        browser
            .wait_for(
                "the wrong password refused",
                r#"return document.body.innerText.includes("wrong password");"#,
                WAIT,
            )
            .await;

        browser.type_into("#password", PAGE_PASSWORD).await;
        browser.click("form button[type=submit]").await;
        browser
            .wait_for(
                "the camera view after the login",
                r#"return !!window.watchpost && !!window.watchpost.view;"#,
                WAIT,
            )
            .await;
        let url = c.current_url().await.unwrap();
        assert_eq!(url.path(), "/cameras/cam0", "{url}");
        let user = c
            .execute(r#"return document.querySelector(".user").textContent;"#, Vec::new())
            .await
            .unwrap();
        assert_eq!(user, format!("page@{lan}").as_str());

        // No password in what the page got.
        for path in ["/", "/cameras/cam0", "/api/agent", "/status", "/api/cameras/cam0/view?width=320"] {
            let body = c
                .execute_async(
                    r#"const done = arguments[arguments.length - 1];
                       fetch(arguments[0]).then((r) => r.text()).then(done, (e) => done("failed: " + e));"#,
                    vec![Value::from(path)],
                )
                .await
                .unwrap();
            let body = body.as_str().unwrap();
            assert!(!body.starts_with("failed"), "{path}: {body}");
            for secret in [PAGE_PASSWORD, CAMERA_PASSWORD] {
                assert!(!body.contains(secret), "{path} shows a password:\n{body}");
            }
        }
        // A state-changing request without the CSRF token is refused, and changes nothing.
        let before = std::fs::read(agent.config_path()).unwrap();
        let status = c
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   fetch("/api/cameras/cam0/shapes", { method: "POST",
                     headers: { "Content-Type": "application/json" },
                     body: JSON.stringify({ kind: "zone", name: "sneaky",
                       points: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]] }) })
                     .then((r) => done(r.status), (e) => done("failed: " + e));"#,
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(status, 403);
        assert_eq!(std::fs::read(agent.config_path()).unwrap(), before);

        // A camera added from the network: a name already taken is refused in clear words;
        // another is added, audited with the peer's user.
        c.goto(&format!("{base}/cameras/new")).await.unwrap();
        browser.type_into("#name", "cam0").await;
        browser.type_into("#url", &server.url("cam1")).await;
        let refused = save_camera(&browser, "a taken name").await.unwrap_err();
        assert!(
            refused.contains("already has a camera named `cam0`"),
            "{refused}"
        );
        assert_eq!(std::fs::read(agent.config_path()).unwrap(), before);
        browser.type_into("#name", "lan-cam").await;
        let said = save_camera(&browser, "the camera added from the network").await;
        assert!(said.as_ref().is_ok_and(|s| s.starts_with("added camera lan-cam")), "{said:?}");
        let audit = std::fs::read_to_string(agent.state_dir().join("audit.log")).unwrap();
        assert!(
            audit.contains("page camera add") && audit.contains(&format!("page@{lan}")),
            "{audit}"
        );
        browser.close().await;
    });
    let log = agent.log();
    for secret in [PAGE_PASSWORD, CAMERA_PASSWORD] {
        assert!(!log.contains(secret), "the log shows a password:\n{log}");
    }
}

/// "Add a camera": a wrong URL gets `camera probe`'s word for it, the right one (with its user
/// and password) a picture and the stream's facts; saved, the camera is in the file without
/// its password (which is in `cam1-password`, 0600), audited, and streams on the overview.
#[test]
fn the_technician_adds_a_camera_after_probing_it() {
    const CAMERA_USER: &str = "viewer";
    const CAMERA_PASSWORD: &str = "clip-pass-5e1";
    let _serial = serial();
    let server = clip_server().with_auth(CAMERA_USER, CAMERA_PASSWORD);
    let broker = Mosquitto::start();
    let port = free_port();
    // The configuration needs a camera: one that does not run, so that the test costs little.
    let mut setup = AgentSetup::one_camera(server.url("cam0"));
    setup.camera_extra = "enabled = false\n".to_owned();
    setup.tables = format!("[local]\nlisten = \"127.0.0.1:{port}\"\n");
    let agent = Agent::start(&broker, &setup);
    let base = format!("http://127.0.0.1:{port}");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };

    runtime().block_on(async {
        let browser = Browser::start("add-camera").await;
        let c = &browser.client;
        browser
            .wait_for(
                "the overview",
                &format!(
                    r#"if (!document.getElementById("add-camera")) {{
                         window.location.href = "{base}/"; return false; }}
                       return true;"#
                ),
                WAIT,
            )
            .await;
        browser.click("#add-camera").await;
        browser
            .wait_for(
                "the Add a camera page",
                r#"return !!document.getElementById("probe");"#,
                WAIT,
            )
            .await;
        assert_eq!(c.current_url().await.unwrap().path(), "/cameras/new");

        // Nothing listens there: `camera probe`'s word and sentence.
        browser
            .type_into("#url", &format!("rtsp://127.0.0.1:{closed}/stream1"))
            .await;
        browser.click("#probe").await;
        let kind = wait_for_probe(&browser, "the closed port probed").await;
        assert_eq!(kind, "refused");
        let message = browser.text("#probe-message").await;
        assert!(
            message.contains(&format!("127.0.0.1:{closed} refused the connection")),
            "{message}"
        );
        browser.screenshot("probe-refused").await;

        // The right URL without the password: 401's word.
        browser.type_into("#url", &server.url("cam1")).await;
        browser.type_into("#camera-user", CAMERA_USER).await;
        browser.click("#probe").await;
        let kind = wait_for_probe(&browser, "the probe without a password").await;
        assert_eq!(kind, "unauthorized");

        // With it: the picture and the stream's facts.
        browser.type_into("#password", CAMERA_PASSWORD).await;
        browser.click("#probe").await;
        let kind = wait_for_probe(&browser, "the probe with the password").await;
        assert_eq!(kind, "works", "{}", browser.text("#probe-message").await);
        browser
            .wait_for(
                "the probe's picture decoded",
                r#"const img = document.getElementById("snapshot");
                   return !img.hidden && img.complete && img.naturalWidth > 0 && img.naturalWidth;"#,
                WAIT,
            )
            .await;
        let width = c
            .execute(
                r#"return document.getElementById("snapshot").naturalWidth;"#,
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(width, 640);
        let facts = browser.text("#probe-facts").await;
        assert!(
            facts.contains("H.264") && facts.contains("640x360"),
            "{facts}"
        );
        let page_text = c
            .execute("return document.documentElement.outerHTML;", Vec::new())
            .await
            .unwrap();
        // The field holds it; nothing the agent sent back does.
        assert_eq!(
            page_text.as_str().unwrap().matches(CAMERA_PASSWORD).count(),
            0
        );
        browser.screenshot("probe-works").await;

        // Saved as cam1: the page links to its view.
        browser.type_into("#name", "cam1").await;
        let said = save_camera(&browser, "the camera saved").await.unwrap();
        let said = said.as_str();
        assert!(said.starts_with("added camera cam1"), "{said}");
        assert!(!said.contains(CAMERA_PASSWORD), "{said}");
        let link = c
            .execute(
                r#"return document.getElementById("camera-link").getAttribute("href");"#,
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(link, "/cameras/cam1");
        browser.screenshot("camera-saved").await;

        // Its view is there, and the overview soon shows it streaming.
        browser.click("#camera-link").await;
        browser
            .wait_for(
                "cam1's view",
                r#"return document.body.dataset.camera === "cam1";"#,
                WAIT,
            )
            .await;
        c.goto(&format!("{base}/")).await.unwrap();
        browser
            .wait_for(
                "the overview shows cam1 streaming",
                r#"const card = document.querySelector('article[data-camera="cam1"]');
                   return !!card && !!card.querySelector(".state-streaming");"#,
                WAIT,
            )
            .await;
        browser.screenshot("overview-with-cam1").await;
        browser.close().await;
    });

    // In the file: the URL and user, and a password file beside it that holds the password.
    let text = std::fs::read_to_string(agent.config_path()).unwrap();
    assert!(!text.contains(CAMERA_PASSWORD), "{text}");
    let file: toml::Table = text.parse().unwrap();
    let camera = file["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some("cam1"))
        .unwrap_or_else(|| panic!("no camera cam1 in the file:\n{text}"));
    assert_eq!(camera["url"].as_str(), Some(server.url("cam1").as_str()));
    assert_eq!(camera["username"].as_str(), Some(CAMERA_USER));
    let password_file = agent.dir.path().join("cam1-password");
    assert_eq!(
        camera["password_file"].as_str(),
        Some(password_file.to_str().unwrap()),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&password_file).unwrap(),
        format!("{CAMERA_PASSWORD}\n")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&password_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Audited with the page's user, the password as ***.
    let audit = std::fs::read_to_string(agent.state_dir().join("audit.log")).unwrap();
    assert!(
        audit.contains("page camera add") && audit.contains("page@local"),
        "{audit}"
    );
    let log = agent.log();
    for (what, text) in [("audit log", &audit), ("agent log", &log)] {
        assert!(
            !text.contains(CAMERA_PASSWORD),
            "the {what} shows the password:\n{text}"
        );
    }
}

/// Waits until the probe started last has answered; the word it shows (`works`, or `camera
/// probe`'s kind: `refused`, `unauthorized`, …).
async fn wait_for_probe(browser: &Browser, what: &str) -> String {
    browser
        .wait_for(
            what,
            r#"const probe = document.getElementById("probe");
               const state = document.getElementById("probe-state");
               return !probe.disabled && state.hidden
                 && document.getElementById("probe-kind").textContent;"#,
            WAIT,
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// Clicks "Add a camera"'s Save and waits for the answer: what the page says, `Err` when it
/// says the camera was not saved.
async fn save_camera(browser: &Browser, what: &str) -> Result<String, String> {
    browser.click("#save").await;
    let said = browser
        .wait_for(
            what,
            r#"const r = document.getElementById("save-result");
               return (r.className === "good" || r.className === "bad")
                 && [r.className, r.textContent];"#,
            WAIT,
        )
        .await;
    let text = said[1].as_str().unwrap().to_owned();
    if said[0] == "good" {
        Ok(text)
    } else {
        Err(text)
    }
}

/// How busy the picture is inside the persons' boxes on the canvas (boxes hidden): the mean
/// difference between horizontally neighbouring pixels, over the middle of each box, and how
/// many boxes were measured.
const PERSON_DETAIL: &str = r#"
const view = window.watchpost.view;
const canvas = document.getElementById("view");
const ctx = canvas.getContext("2d");
const p = window.watchpost.placement();
let sum = 0, n = 0, boxes = 0;
for (const o of view.objects) {
  if (o.class !== "person") continue;
  const [x, y, w, h] = [p.ox + o.bbox[0] * p.fw, p.oy + o.bbox[1] * p.fh, o.bbox[2] * p.fw, o.bbox[3] * p.fh];
  const [x0, y0, bw, bh] = [Math.ceil(x + w * 0.2), Math.ceil(y + h * 0.2), Math.floor(w * 0.6), Math.floor(h * 0.6)];
  if (bw < 8 || bh < 8) continue;
  const data = ctx.getImageData(x0, y0, bw, bh).data;
  for (let row = 0; row < bh; row++) {
    for (let col = 0; col + 1 < bw; col++) {
      const i = (row * bw + col) * 4;
      sum += Math.abs(data[i + 1] - data[i + 5]);
      n += 1;
    }
  }
  boxes += 1;
}
return [n ? sum / n : null, boxes];
"#;

/// The camera view follows the camera's privacy as it is changed live: persons pixelated when
/// `redacted`, their detail back when `annotated`, boxes on a blank frame when `off`; and on
/// request it shows what the model sees, the boxes still where the detections say.
#[test]
fn the_camera_view_follows_the_privacy_mode_and_shows_what_the_model_sees() {
    let _serial = serial();
    let server = clip_server();
    let broker = Mosquitto::start();
    let port = free_port();
    let mut setup = AgentSetup::one_camera(server.url("cam0"));
    setup.tables =
        format!("[local]\nlisten = \"127.0.0.1:{port}\"\n\n[events]\nsnapshots = \"redacted\"\n");
    let agent = Agent::start(&broker, &setup);
    let base = format!("http://127.0.0.1:{port}");
    // Rewrites `[events] snapshots` and has the agent reload its file (live).
    let set_snapshots = |from: &str, to: &str| {
        let path = agent.config_path();
        let text = std::fs::read_to_string(&path).unwrap();
        let old = format!("snapshots = \"{from}\"");
        assert!(text.contains(&old), "{text}");
        std::fs::write(&path, text.replace(&old, &format!("snapshots = \"{to}\""))).unwrap();
        agent.signal(libc::SIGHUP);
    };

    runtime().block_on(async {
        let browser = Browser::start("privacy").await;
        let b = &browser;
        let c = &browser.client;
        c.goto(&format!("{base}/cameras/cam0")).await.unwrap();
        browser.click("#show-boxes").await;
        // The mean detail inside persons over a few pictures, in the privacy mode `privacy`.
        let detail = |privacy: &'static str| async move {
            let mut all = Vec::new();
            while all.len() < 4 {
                let frames = b
                    .wait_for(
                        &format!("a {privacy} picture with a person"),
                        &format!(
                            r#"const v = window.watchpost && window.watchpost.view;
                               return !!v && v.privacy === "{privacy}" && !!v.picture
                                 && v.objects.some((o) => o.class === "person")
                                 && Number(document.getElementById("view").dataset.frames);"#
                        ),
                        WAIT,
                    )
                    .await;
                let measured = c.execute(PERSON_DETAIL, Vec::new()).await.unwrap();
                if let Some(mean) = measured[0].as_f64() {
                    all.push(mean);
                }
                // The next picture.
                b
                    .wait_for(
                        "the next picture",
                        &format!(
                            r#"return Number(document.getElementById("view").dataset.frames) > {frames};"#
                        ),
                        WAIT,
                    )
                    .await;
            }
            all.iter().sum::<f64>() / all.len() as f64
        };
        let redacted = detail("redacted").await;
        browser.screenshot("redacted").await;
        set_snapshots("redacted", "annotated");
        let full = detail("full").await;
        browser.screenshot("full").await;
        assert!(
            full > 1.5 * redacted,
            "persons are not pixelated when redacted: detail {redacted:.2} redacted, {full:.2} full"
        );

        // Pictures off: no picture, the boxes on a blank frame.
        set_snapshots("annotated", "off");
        browser.click("#show-boxes").await;
        browser
            .wait_for(
                "a view without a picture, with objects",
                r#"const v = window.watchpost.view;
                   return v.privacy === "off" && v.picture === null && v.objects.length > 0;"#,
                WAIT,
            )
            .await;
        let blank = c
            .execute(
                r#"const ctx = document.getElementById("view").getContext("2d");
                   return Array.from(ctx.getImageData(1, ctx.canvas.height - 2, 1, 1).data.slice(0, 3));"#,
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(blank, serde_json::json!([43, 43, 43]), "the blank frame");
        let pixels = c.execute(BOX_PIXELS, Vec::new()).await.unwrap();
        for entry in pixels.as_array().unwrap() {
            assert!(close(&entry[0], &entry[1]), "boxes on the blank frame: {pixels}");
        }
        browser.screenshot("pictures-off").await;

        // What the model sees: its input's size, the boxes still on the detections.
        set_snapshots("off", "annotated");
        browser.click("#show-model-input").await;
        browser
            .wait_for(
                "the model's input with objects",
                r#"const v = window.watchpost.view;
                   const canvas = document.getElementById("view");
                   return !!v.model_input && !!v.picture && v.objects.length > 0
                     && canvas.width === v.model_input.width
                     && canvas.height === v.model_input.height;"#,
                WAIT,
            )
            .await;
        let input = c
            .execute("return window.watchpost.view.model_input;", Vec::new())
            .await
            .unwrap();
        // The bundled model: 416×416, the frame stretched to fill it.
        assert_eq!((input["width"].as_u64(), input["height"].as_u64()), (Some(416), Some(416)), "{input}");
        let pixels = c.execute(BOX_PIXELS, Vec::new()).await.unwrap();
        assert!(!pixels.as_array().unwrap().is_empty());
        for entry in pixels.as_array().unwrap() {
            assert!(close(&entry[0], &entry[1]), "boxes on the model's input: {pixels}");
        }
        let said = browser.text("#view-state").await;
        assert!(said.contains("what the model sees: its 416×416 input"), "{said}");
        browser.screenshot("model-input").await;
        browser.close().await;
    });
}
