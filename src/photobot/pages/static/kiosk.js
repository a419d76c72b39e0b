/* Reference kiosk: a worked example of the public API, nothing more.
   1. The event's kiosk token is entered once and kept in localStorage.
   2. GET  /v1/styles                (Bearer token)  → the style picker: the event's styles in its order, each
                                                       with its preview_url; takes_photo: false = no photo sent.
      GET  /v1/event                 (Bearer token)  → whether the guest must consent, and to which words.
   3. POST /v1/jobs, multipart       (Bearer token)  → 202 {id, status, page_url, qr_url} (consent=true if ticked).
   4. Show qr_url; follow page_url + "/events" (Server-Sent Events), or poll page_url + ".json". */
(function () {
  "use strict";
  var KEY = "photobot.kioskToken";
  var $ = function (id) { return document.getElementById(id); };
  var token = localStorage.getItem(KEY);
  var photo = null;
  var camera = null;
  var source = null;
  var pollTimer = null;
  var needsPhoto = true;  // the chosen style's takes_photo
  var textKey = null;  // the Idempotency-Key of a prompt-only request
  var LABELS = {
    pending: "Waiting in line…", processing: "Creating the photo…",
    completed: "Ready! Scan the code to download it.", failed: "Sorry, that did not work. Please try again."
  };

  function show(id) {
    ["setup", "capture", "result"].forEach(function (name) { $(name).hidden = name !== id; });
    $("forget").hidden = id === "setup";
  }

  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({ Authorization: "Bearer " + token, Accept: "application/json" }, options.headers);
    return fetch(path, options).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        if (res.ok) return body;
        var err = new Error((body && (body.detail || body.title)) || "HTTP " + res.status);
        err.status = res.status;
        throw err;
      });
    });
  }

  function styleTile(style, checked) {
    var label = document.createElement("label");
    label.className = "style";
    var input = document.createElement("input");
    input.type = "radio";
    input.name = "style";
    input.value = style.id;
    input.required = true;
    input.checked = checked;
    input.dataset.takesPhoto = style.takes_photo === false ? "no" : "yes";
    label.appendChild(input);
    if (style.preview_url) {
      var img = document.createElement("img");
      img.src = style.preview_url;
      img.alt = "";  // the name says it; the picture is an example
      img.decoding = "async";
      label.appendChild(img);
    } else {
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.setAttribute("aria-hidden", "true");
      swatch.textContent = style.name.charAt(0);
      label.appendChild(swatch);
    }
    var name = document.createElement("span");
    name.className = "style-name";
    name.textContent = style.name;
    label.appendChild(name);
    return label;
  }

  function loadStyles() {
    return api("/v1/styles").then(function (data) {
      var list = $("style-list");
      list.textContent = "";
      data.styles.forEach(function (style, i) { list.appendChild(styleTile(style, i === 0)); });
      if (!data.styles.length) list.innerHTML = '<p class="hint">This event offers no styles yet.</p>';
      styleChanged();
    });
  }

  function loadEvent() {
    return api("/v1/event").then(function (event) {
      $("consent-text").textContent = event.consent_text;
      $("consent-box").hidden = !event.consent_required;
    });
  }

  function styleChanged() {
    var chosen = document.querySelector("input[name=style]:checked");
    needsPhoto = !chosen || chosen.dataset.takesPhoto !== "no";
    textKey = null;  // another style is another request: a new key
    if (photo) photo.key = null;
    $("capture").classList.toggle("no-photo-style", !needsPhoto);
    $("no-photo").hidden = needsPhoto;
    updateSubmit();
  }

  function updateSubmit() {
    $("submit").disabled = !document.querySelector("input[name=style]:checked") || (needsPhoto && !photo);
  }

  function start() {
    if (!token) { show("setup"); $("token").focus(); return; }
    Promise.all([loadStyles(), loadEvent()]).then(function () {
      show("capture");
      startCamera();
    }).catch(function (err) {
      if (err.status === 401 || err.status === 403) {
        localStorage.removeItem(KEY);
        token = null;
        show("setup");
        $("setup-error").textContent = "That token was not accepted. Check it and try again.";
      } else {
        show("capture");
        $("capture-error").textContent = "Could not load the styles: " + err.message;
      }
    });
  }

  function useFilePicker(message) {
    $("file-fallback").hidden = false;
    $("snap").hidden = true;
    $("video").hidden = true;
    if (message) $("capture-error").textContent = message;
  }

  function startCamera() {
    resetPhoto();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { useFilePicker(); return; }
    if (camera) { $("video").srcObject = camera; return; }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 960 } }, audio: false })
      .then(function (stream) {
        camera = stream;
        $("video").srcObject = stream;
        if (!photo) { $("video").hidden = false; $("snap").hidden = false; }
      })
      .catch(function () { useFilePicker("No camera available: choose a photo instead."); });
  }

  function setPhoto(blob) {
    photo = blob;
    var preview = $("preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    $("video").hidden = true;
    $("snap").hidden = true;
    $("retake").hidden = false;
    updateSubmit();
    $("capture-error").textContent = "";
  }

  function resetPhoto() {
    photo = null;
    $("preview").hidden = true;
    $("video").hidden = !camera;
    $("snap").hidden = !camera;
    $("retake").hidden = true;
    updateSubmit();
    $("file").value = "";
  }

  function snap() {
    var video = $("video");
    if (!video.videoWidth) { $("capture-error").textContent = "The camera is not ready yet."; return; }
    var canvas = $("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(function (blob) { if (blob) setPhoto(blob); }, "image/jpeg", 0.9);
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  function submit(event) {
    event.preventDefault();
    if (needsPhoto && !photo) { $("capture-error").textContent = "Take a photo first."; return; }
    if (!$("consent-box").hidden && !$("consent").checked) {
      $("capture-error").textContent = "Please tick the box to agree first.";
      return;
    }
    var form = new FormData();
    if (needsPhoto) form.append("image", photo, "photo.jpg");  // a text-to-image style takes none
    var style = document.querySelector("input[name=style]:checked");
    if (style) form.append("style", style.value);
    ["email", "phone"].forEach(function (name) { if ($(name).value.trim()) form.append(name, $(name).value.trim()); });
    if ($("consent").checked) form.append("consent", "true");
    var button = $("submit");
    button.disabled = true;
    button.textContent = "Sending…";
    // one key per photo (per guest and style without one), kept for retries of the same request
    var key = needsPhoto ? (photo.key || (photo.key = newKey())) : (textKey || (textKey = newKey()));
    api("/v1/jobs", { method: "POST", body: form, headers: { "Idempotency-Key": key } })
      .then(showResult)
      .catch(function (err) {
        $("capture-error").textContent = err.message;
        button.disabled = false;
      })
      .then(function () { button.textContent = "Make my photo"; });
  }

  function setStatus(state) {
    $("kiosk-status").textContent = LABELS[state.status] || state.status;
    if (state.status === "completed" && state.result_url) {
      $("result-photo").src = state.result_url;
      $("result-photo").hidden = false;
    }
  }

  function stopFollowing() {
    if (source) { source.close(); source = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  function poll(url, etag) {
    fetch(url, { headers: etag ? { "If-None-Match": etag } : {}, cache: "no-store" }).then(function (res) {
      var wait = Number(res.headers.get("Retry-After")) || 0;
      if (res.status === 200) {
        var tag = res.headers.get("ETag");
        return res.json().then(function (state) {
          setStatus(state);
          if (wait) pollTimer = setTimeout(function () { poll(url, tag); }, wait * 1000);
        });
      }
      if (res.status === 304 && wait) pollTimer = setTimeout(function () { poll(url, etag); }, wait * 1000);
    }).catch(function () { pollTimer = setTimeout(function () { poll(url, etag); }, 5000); });
  }

  function follow(pageUrl) {
    stopFollowing();
    var url = new URL(pageUrl, location.href);  // same origin: a relative path (works behind any proxy host)
    if (url.origin === location.origin) pageUrl = url.pathname;
    if (!window.EventSource) { poll(pageUrl + ".json"); return; }
    source = new EventSource(pageUrl + "/events");
    source.addEventListener("state", function (e) {
      var state = JSON.parse(e.data);
      setStatus(state);
      if (state.status === "completed" || state.status === "failed") stopFollowing();
    });
    source.onerror = function () {
      if (source && source.readyState === EventSource.CLOSED) { source = null; poll(pageUrl + ".json"); }
    };
  }

  function showResult(job) {
    show("result");
    $("qr").src = job.qr_url.replace(/\.png$/, ".svg");
    $("page-link").href = job.page_url;
    $("page-link").textContent = job.page_url.replace(/^https?:\/\//, "");
    $("result-photo").hidden = true;
    setStatus(job);
    follow(job.page_url);
    $("result-title").focus();
  }

  $("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    token = $("token").value.trim();
    if (!token) return;
    localStorage.setItem(KEY, token);
    $("setup-error").textContent = "";
    $("token").value = "";
    start();
  });
  $("forget").addEventListener("click", function () {
    stopFollowing();
    localStorage.removeItem(KEY);
    token = null;
    show("setup");
  });
  $("snap").addEventListener("click", snap);
  $("retake").addEventListener("click", startCamera);
  $("file").addEventListener("change", function () { if (this.files[0]) setPhoto(this.files[0]); });
  $("style-list").addEventListener("change", styleChanged);
  $("capture").addEventListener("submit", submit);
  $("again").addEventListener("click", function () {
    stopFollowing();
    textKey = null;
    $("email").value = "";
    $("phone").value = "";
    $("consent").checked = false;
    show("capture");
    startCamera();
  });
  $("result-title").setAttribute("tabindex", "-1");
  start();
})();
