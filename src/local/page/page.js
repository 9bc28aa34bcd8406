// watchpost technician's page: the overview and the camera view with its zone and line
// editor. Plain script, no libraries, nothing fetched from elsewhere. Coordinates are
// fractions of the frame, as in the configuration file.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const CLASS_COLOURS = { person: "#ff3b3b", vehicle: "#3b9dff", other: "#ffd23b" };
  const ZONE_COLOUR = "#3bff6e";
  const LINE_COLOUR = "#ff9f1c";
  const DRAFT_COLOUR = "#ff3bff";

  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function answer(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const why = (body && body.error) || response.status + " " + response.statusText;
      throw new Error(why);
    }
    return body;
  }

  async function getJson(url) {
    return answer(await fetch(url, { cache: "no-store", credentials: "same-origin" }));
  }

  async function postJson(url, data) {
    return answer(
      await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(data),
      })
    );
  }

  function loadImage(src) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error("the picture could not be decoded"));
      image.src = src;
    });
  }

  function fixed(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function duration(seconds) {
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    return (d ? d + " d " : "") + (d || h ? h + " h " : "") + m + " min " + (s % 60) + " s";
  }

  function drops(report) {
    const parts = Object.entries(report.drops || {})
      .filter(([, n]) => n > 0)
      .map(([why, n]) => why + " " + n);
    return parts.length ? parts.join(", ") : "none";
  }

  function label(ctx, text, x, y, colour, size) {
    ctx.font = size + "px sans-serif";
    const width = ctx.measureText(text).width + 6;
    const top = Math.max(0, y - size - 4);
    ctx.fillStyle = "rgba(0, 0, 0, 0.65)";
    ctx.fillRect(x, top, width, size + 4);
    ctx.fillStyle = colour;
    ctx.fillText(text, x + 3, top + size);
  }

  // Where the frame lies on a `w` x `h` canvas showing `view`: the point (x, y), in fractions
  // of the frame, is at (ox + x * fw, oy + y * fh). The whole canvas, except for a view of
  // what the model sees, where the frame is scaled into the model's input between its
  // letterbox bars.
  function placement(view, w, h) {
    const input = view.model_input;
    if (!input) return { ox: 0, oy: 0, fw: w, fh: h };
    const k = w / input.width;
    return {
      ox: input.pad_x * k,
      oy: input.pad_y * k,
      fw: view.width * input.scale_x * k,
      fh: view.height * input.scale_y * k,
    };
  }

  // Draws `view` (and its picture, or a blank frame when pictures are off) on `canvas`, with
  // the overlays `show` asks for. The canvas takes the picture's size.
  function drawView(canvas, view, image, show, maxWidth) {
    const ctx = canvas.getContext("2d");
    let w;
    let h;
    if (image) {
      w = image.naturalWidth;
      h = image.naturalHeight;
    } else if (view.model_input) {
      w = view.model_input.width;
      h = view.model_input.height;
    } else {
      w = Math.min(view.width, maxWidth);
      h = Math.round((view.height * w) / view.width);
    }
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const size = Math.max(11, Math.round(w / 70));
    const thick = Math.max(2, Math.round(w / 400));
    const place = placement(view, w, h);
    const px = ([x, y]) => [place.ox + x * place.fw, place.oy + y * place.fh];
    if (image) {
      ctx.drawImage(image, 0, 0, w, h);
    } else {
      ctx.fillStyle = "#111";
      ctx.fillRect(0, 0, w, h);
      ctx.fillStyle = "#2b2b2b";
      ctx.fillRect(place.ox, place.oy, place.fw, place.fh);
      ctx.fillStyle = "#888";
      ctx.font = size + "px sans-serif";
      ctx.fillText("pictures are off on this device: boxes only", 8, size + 8);
    }
    ctx.lineWidth = thick;
    if (show.zones) {
      for (const zone of view.zones) {
        if (zone.points.length < 2) continue;
        ctx.beginPath();
        zone.points.forEach((p, i) => (i ? ctx.lineTo(...px(p)) : ctx.moveTo(...px(p))));
        ctx.closePath();
        ctx.fillStyle = "rgba(59, 255, 110, 0.12)";
        ctx.fill();
        ctx.strokeStyle = ZONE_COLOUR;
        ctx.stroke();
        const [x, y] = px(zone.points[0]);
        label(ctx, zone.name + " · " + zone.occupancy + " inside", x, y + size + 6, ZONE_COLOUR, size);
      }
    }
    if (show.lines) {
      for (const line of view.lines) {
        drawLine(ctx, line.points, place, LINE_COLOUR, thick, size, line.direction_names);
        const [x, y] = px(line.points[0]);
        const text = line.name + ": " + line.direction_names[0] + " " + line.crossings[0] + " · " +
          line.direction_names[1] + " " + line.crossings[1];
        label(ctx, text, x, y, LINE_COLOUR, size);
      }
    }
    if (show.boxes) {
      for (const object of view.objects) {
        const [x, y] = px(object.bbox);
        const [bw, bh] = [object.bbox[2] * place.fw, object.bbox[3] * place.fh];
        const colour = CLASS_COLOURS[object.class] || CLASS_COLOURS.other;
        ctx.strokeStyle = colour;
        ctx.lineWidth = thick;
        ctx.strokeRect(x, y, bw, bh);
        const track = object.track_id === null ? "" : " #" + object.track_id;
        label(ctx, object.label + " " + object.score.toFixed(2) + track, x, y, colour, size);
      }
    }
  }

  // A polyline with an arrow across its middle segment, pointing from its left side to its
  // right side (a crossing that way is `names[0]`), as the agent counts sides. `place`: where
  // the frame lies on the canvas (`placement`).
  function drawLine(ctx, points, place, colour, thick, size, names) {
    if (points.length < 2) return;
    const px = ([x, y]) => [place.ox + x * place.fw, place.oy + y * place.fh];
    ctx.strokeStyle = colour;
    ctx.lineWidth = thick;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(...px(p)) : ctx.moveTo(...px(p))));
    ctx.stroke();
    const i = Math.floor((points.length - 1) / 2);
    const [ax, ay] = px(points[i]);
    const [bx, by] = px(points[i + 1]);
    const length = Math.hypot(bx - ax, by - ay);
    if (length < 1) return;
    // The right-hand normal on the screen (y down): (-dy, dx).
    const nx = -(by - ay) / length;
    const ny = (bx - ax) / length;
    const mx = (ax + bx) / 2;
    const my = (ay + by) / 2;
    const reach = Math.max(20, size * 2.5);
    const [tx, ty] = [mx + nx * reach, my + ny * reach];
    ctx.beginPath();
    ctx.moveTo(mx - nx * reach, my - ny * reach);
    ctx.lineTo(tx, ty);
    ctx.moveTo(tx, ty);
    ctx.lineTo(tx - nx * size + ny * size * 0.6, ty - ny * size - nx * size * 0.6);
    ctx.moveTo(tx, ty);
    ctx.lineTo(tx - nx * size - ny * size * 0.6, ty - ny * size + nx * size * 0.6);
    ctx.stroke();
    if (names) label(ctx, "→ " + names[0], tx + 4, ty + size / 2, colour, size);
  }

  // ---- overview ----------------------------------------------------------------------------

  function overviewPage() {
    const cards = new Map();
    const grid = $("cameras");

    function card(name) {
      let entry = cards.get(name);
      if (entry) return entry;
      const element = document.createElement("article");
      element.className = "card";
      element.dataset.camera = name;
      const title = document.createElement("h2");
      const link = document.createElement("a");
      link.href = "/cameras/" + encodeURIComponent(name);
      link.textContent = name;
      title.appendChild(link);
      const canvas = document.createElement("canvas");
      canvas.width = 320;
      canvas.height = 180;
      canvas.dataset.frames = "0";
      const table = document.createElement("table");
      element.append(title, canvas, table);
      grid.appendChild(element);
      entry = { element, canvas, table, frames: 0 };
      cards.set(name, entry);
      return entry;
    }

    function row(table, key, value, className) {
      const tr = document.createElement("tr");
      const k = document.createElement("td");
      const v = document.createElement("td");
      k.textContent = key;
      v.textContent = value;
      if (className) v.className = className;
      tr.append(k, v);
      table.appendChild(tr);
    }

    async function refresh() {
      const status = await getJson("/status");
      $("version").textContent = status.version;
      $("uptime").textContent = duration(status.uptime_s);
      const broker = status.broker;
      $("broker").textContent = broker.connected
        ? "connected (" + (broker.endpoint || "") + ")"
        : "not connected" + (broker.last_error ? ": " + broker.last_error : "");
      const outbox = status.outbox;
      $("outbox").textContent = outbox.ok
        ? outbox.pending + " waiting, " + outbox.delivered + " delivered"
        : "FAILING: " + (outbox.error || "");
      const notice = $("at-restart");
      notice.hidden = !(status.at_restart && status.at_restart.length);
      notice.textContent = (status.at_restart || []).join("; ");
      const seen = new Set();
      for (const camera of status.cameras) {
        seen.add(camera.name);
        const entry = card(camera.name);
        entry.table.replaceChildren();
        row(entry.table, "state", camera.state, "state-" + camera.state);
        if (camera.decoder) row(entry.table, "decoder", camera.decoder);
        row(entry.table, "fps in / analysed", fixed(camera.fps_in, 1) + " / " + fixed(camera.fps_analysed, 1));
        row(entry.table, "latency p50 / p99", fixed(camera.latency_ms.p50, 0) + " / " + fixed(camera.latency_ms.p99, 0) + " ms");
        row(entry.table, "dropped", drops(camera));
        row(entry.table, "reconnects", String(camera.reconnects));
        if (camera.last_error) row(entry.table, "last error", camera.last_error);
      }
      for (const [name, entry] of cards) {
        if (!seen.has(name)) {
          entry.element.remove();
          cards.delete(name);
        }
      }
    }

    async function facts() {
      const agent = await getJson("/api/agent");
      $("config-version").textContent = agent.config_version || "–";
    }

    async function thumbnails() {
      for (;;) {
        if (document.hidden || cards.size === 0) {
          await sleep(1000);
          continue;
        }
        for (const [name, entry] of Array.from(cards)) {
          try {
            const view = await getJson("/api/cameras/" + encodeURIComponent(name) + "/view?width=320");
            const image = view.picture ? await loadImage(view.picture) : null;
            drawView(entry.canvas, view, image, { boxes: true, zones: true, lines: true }, 320);
            entry.frames += 1;
            entry.canvas.dataset.frames = String(entry.frames);
          } catch (e) {
            // A camera that is not streaming: its state says why.
          }
        }
        await sleep(1000);
      }
    }

    async function loop(what, every) {
      for (;;) {
        try {
          await what();
          $("error").hidden = true;
        } catch (e) {
          $("error").hidden = false;
          $("error").textContent = "cannot reach the agent: " + e.message;
        }
        await sleep(every);
      }
    }

    loop(refresh, 1000);
    loop(facts, 10000);
    thumbnails();
  }

  // ---- camera view and editor --------------------------------------------------------------

  function cameraPage() {
    const name = document.body.dataset.camera;
    const base = "/api/cameras/" + encodeURIComponent(name);
    const canvas = $("view");
    const draft = { points: [], dragging: -1 };
    let current = null;
    let frames = 0;
    // For a person looking from the developer tools, and for the browser tests.
    window.watchpost = { view: null, draft, placement: () => framePlacement() };

    function show() {
      return { boxes: $("show-boxes").checked, zones: $("show-zones").checked, lines: $("show-lines").checked };
    }

    // Where the frame lies on the canvas, in canvas pixels.
    function framePlacement() {
      return current ? placement(current.view, canvas.width, canvas.height) : { ox: 0, oy: 0, fw: canvas.width, fh: canvas.height };
    }

    function kind() {
      return $("kind-line").checked ? "line" : "zone";
    }

    function render() {
      if (!current) return;
      drawView(canvas, current.view, current.image, show(), 1280);
      const w = canvas.width;
      const place = framePlacement();
      const px = ([x, y]) => [place.ox + x * place.fw, place.oy + y * place.fh];
      const ctx = canvas.getContext("2d");
      const thick = Math.max(2, Math.round(w / 400));
      const size = Math.max(11, Math.round(w / 70));
      if (draft.points.length) {
        if (kind() === "line") {
          drawLine(ctx, draft.points, place, DRAFT_COLOUR, thick, size, [$("direction-0").value, $("direction-1").value]);
        } else {
          ctx.strokeStyle = DRAFT_COLOUR;
          ctx.lineWidth = thick;
          ctx.beginPath();
          draft.points.forEach((p, i) => (i ? ctx.lineTo(...px(p)) : ctx.moveTo(...px(p))));
          if (draft.points.length > 2) ctx.closePath();
          ctx.stroke();
        }
        ctx.fillStyle = DRAFT_COLOUR;
        for (const p of draft.points) {
          const [x, y] = px(p);
          ctx.beginPath();
          ctx.arc(x, y, thick * 3, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
      $("points").textContent = draft.points.map(([x, y]) => "[" + x.toFixed(4) + ", " + y.toFixed(4) + "]").join(" ");
    }

    function shapesList(view) {
      const list = $("shapes");
      const items = [];
      for (const zone of view.zones) items.push({ kind: "zone", shape: zone });
      for (const line of view.lines) items.push({ kind: "line", shape: line });
      const key = JSON.stringify(items.map((i) => [i.kind, i.shape.name, i.shape.points]));
      if (list.dataset.key === key) return;
      list.dataset.key = key;
      list.replaceChildren();
      for (const { kind: k, shape } of items) {
        const li = document.createElement("li");
        li.textContent = k + " " + shape.name + " ";
        const edit = document.createElement("button");
        edit.type = "button";
        edit.textContent = "edit";
        edit.onclick = () => {
          (k === "line" ? $("kind-line") : $("kind-zone")).checked = true;
          kindChanged();
          $("shape-name").value = shape.name;
          draft.points = shape.points.map(([x, y]) => [x, y]);
          if (k === "line") {
            $("direction-0").value = shape.direction_names[0];
            $("direction-1").value = shape.direction_names[1];
          }
          const classes = shape.classes.length ? shape.classes : ["person", "vehicle"];
          $("class-person").checked = classes.includes("person");
          $("class-vehicle").checked = classes.includes("vehicle");
          render();
        };
        const remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "remove";
        remove.onclick = async () => {
          if (!window.confirm("Remove " + k + " " + shape.name + " from camera " + name + "?")) return;
          await submit(() => postJson(base + "/shapes/remove", { kind: k, name: shape.name }));
        };
        li.append(edit, remove);
        list.appendChild(li);
      }
      const counts = $("counts");
      counts.replaceChildren();
      for (const zone of view.zones) {
        const li = document.createElement("li");
        li.textContent = "zone " + zone.name + ": " + zone.occupancy + " inside";
        counts.appendChild(li);
      }
      for (const line of view.lines) {
        const li = document.createElement("li");
        li.textContent = "line " + line.name + ": " + line.direction_names[0] + " " + line.crossings[0] +
          ", " + line.direction_names[1] + " " + line.crossings[1];
        counts.appendChild(li);
      }
    }

    async function submit(request) {
      const result = $("save-result");
      try {
        const done = await request();
        result.className = "good";
        const live = done.live && done.live.length ? " (applied live: " + done.live.join("; ") + ")" : "";
        result.textContent = done.done + live;
        return true;
      } catch (e) {
        result.className = "bad";
        result.textContent = e.message;
        return false;
      }
    }

    function kindChanged() {
      $("zone-options").hidden = kind() !== "zone";
      $("line-options").hidden = kind() !== "line";
      render();
    }

    // The pointer on the canvas, in canvas pixels.
    function pointer(event) {
      const rect = canvas.getBoundingClientRect();
      return [
        ((event.clientX - rect.left) * canvas.width) / rect.width,
        ((event.clientY - rect.top) * canvas.height) / rect.height,
      ];
    }

    // The point under the pointer, as fractions of the frame.
    function at(event) {
      const [cx, cy] = pointer(event);
      const p = framePlacement();
      const x = Math.min(1, Math.max(0, (cx - p.ox) / p.fw));
      const y = Math.min(1, Math.max(0, (cy - p.oy) / p.fh));
      return [Number(x.toFixed(4)), Number(y.toFixed(4))];
    }

    // The draft point within 10 screen pixels of the pointer, or -1.
    function nearest(event) {
      const [cx, cy] = pointer(event);
      const p = framePlacement();
      const perScreenPixel = canvas.width / canvas.getBoundingClientRect().width;
      let best = -1;
      let bestDistance = 10;
      draft.points.forEach(([x, y], i) => {
        const d = Math.hypot(cx - p.ox - x * p.fw, cy - p.oy - y * p.fh) / perScreenPixel;
        if (d < bestDistance) {
          best = i;
          bestDistance = d;
        }
      });
      return best;
    }

    canvas.addEventListener("pointerdown", (event) => {
      const hit = nearest(event);
      if (hit >= 0 && event.shiftKey) {
        draft.points.splice(hit, 1);
      } else if (hit >= 0) {
        draft.dragging = hit;
        canvas.setPointerCapture(event.pointerId);
      } else {
        draft.points.push(at(event));
      }
      render();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (draft.dragging < 0) return;
      draft.points[draft.dragging] = at(event);
      render();
    });
    canvas.addEventListener("pointerup", () => {
      draft.dragging = -1;
    });
    for (const id of ["show-boxes", "show-zones", "show-lines", "show-model-input", "direction-0", "direction-1"]) {
      $(id).addEventListener("input", render);
    }
    $("kind-zone").addEventListener("change", kindChanged);
    $("kind-line").addEventListener("change", kindChanged);
    $("undo-point").addEventListener("click", () => {
      draft.points.pop();
      render();
    });
    $("clear-points").addEventListener("click", () => {
      draft.points = [];
      render();
    });
    $("save-shape").addEventListener("click", async () => {
      const shape = {
        kind: kind(),
        name: $("shape-name").value.trim(),
        points: draft.points,
        classes: [],
      };
      const classes = [];
      if ($("class-person").checked) classes.push("person");
      if ($("class-vehicle").checked) classes.push("vehicle");
      if (classes.length === 1) shape.classes = classes;
      if (shape.kind === "line") {
        shape.direction_names = [$("direction-0").value.trim(), $("direction-1").value.trim()];
      }
      if (!shape.name) {
        $("save-result").className = "bad";
        $("save-result").textContent = "give the " + shape.kind + " a name first";
        return;
      }
      if (await submit(() => postJson(base + "/shapes", shape))) {
        draft.points = [];
        render();
      }
    });

    async function pictures() {
      for (;;) {
        if (document.hidden) {
          await sleep(500);
          continue;
        }
        try {
          const modelInput = $("show-model-input").checked;
          // As wide as the picture is shown (at most 1280): a smaller picture costs the agent less.
          const shown = canvas.getBoundingClientRect().width * (window.devicePixelRatio || 1);
          const width = Math.min(1280, Math.max(320, Math.round(shown)));
          const view = await getJson(base + "/view?width=" + width + (modelInput ? "&model_input=true" : ""));
          const image = view.picture ? await loadImage(view.picture) : null;
          current = { view, image };
          window.watchpost.view = view;
          frames += 1;
          render();
          canvas.dataset.frames = String(frames);
          shapesList(view);
          $("privacy").textContent = view.privacy;
          const input = view.model_input;
          $("view-state").textContent = input
            ? "what the model sees: its " + input.width + "×" + input.height + " input (a person 100 pixels tall in the frame is " +
              Math.round(100 * input.scale_y) + " pixels tall to the model); captured at " + view.captured_at + ", " +
              view.objects.length + " object(s)"
            : "frame captured at " + view.captured_at + ", " + view.objects.length + " object(s)";
        } catch (e) {
          $("view-state").textContent = e.message;
          await sleep(1000);
        }
      }
    }

    async function figures() {
      for (;;) {
        try {
          const status = await getJson("/status");
          const camera = status.cameras.find((c) => c.name === name);
          if (camera) {
            $("state").textContent = camera.state;
            $("fps-in").textContent = fixed(camera.fps_in, 1);
            $("fps-analysed").textContent = fixed(camera.fps_analysed, 1);
            $("latency").textContent = fixed(camera.latency_ms.p50, 0) + " / " + fixed(camera.latency_ms.p99, 0) + " ms";
          }
        } catch (e) {
          $("state").textContent = "cannot reach the agent";
        }
        await sleep(1000);
      }
    }

    kindChanged();
    pictures();
    figures();
  }

  if (document.body.dataset.page === "overview") overviewPage();
  if (document.body.dataset.page === "camera") cameraPage();

  // For the page's other scripts (add.js).
  window.watchpostPage = { getJson, postJson };
})();
