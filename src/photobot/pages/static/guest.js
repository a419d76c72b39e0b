/* Guest page: follow the job live (Server-Sent Events, else polling with ETag) and offer sharing.
   The page is complete without this script; it only saves the guest a reload. */
(function () {
  "use strict";
  var body = document.body;
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var base = "/p/" + encodeURIComponent(body.dataset.publicId);
  var status = body.dataset.status;
  var etag = null;
  var $ = function (id) { return document.getElementById(id); };
  var isFinal = function (s) { return s === "completed" || s === "failed"; };

  function reveal(state) {
    $("progress").hidden = isFinal(state.status);
    $("done").hidden = state.status !== "completed";
    $("failed").hidden = state.status !== "failed";
    if (state.status === "failed" && state.error && state.error.code === "content_blocked") {
      $("failed-title").textContent = data.strings.blocked_title;  // the provider refused the photo: say so kindly
      $("failed-text").textContent = data.strings.blocked_text;
    }
    if (isFinal(state.status)) {
      var heading = $(state.status === "completed" ? "done-title" : "failed-title");
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }

  function apply(state) {
    if (state.status === status && !(state.status === "completed" && !$("photo").getAttribute("src"))) return;
    status = state.status;
    body.dataset.status = status;
    $("status").textContent = data.strings[status] || "";
    if (status === "completed" && state.result_url) {
      $("download").href = state.download_url || state.result_url;
      var loader = new Image();
      loader.onload = loader.onerror = function () { $("photo").src = state.result_url; reveal(state); };
      loader.src = state.result_url;
    } else {
      reveal(state);
    }
  }

  function poll() {
    if (isFinal(status)) return;
    var wait = Number(body.dataset.retry) || 2;
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch(base + ".json", { headers: headers, cache: "no-store" })
      .then(function (res) {
        if (res.status === 404 || res.status === 410) { location.reload(); return null; }
        wait = Number(res.headers.get("Retry-After")) || wait;
        if (res.status !== 200) return null;
        etag = res.headers.get("ETag");
        return res.json();
      })
      .then(function (state) { if (state) apply(state); })
      .catch(function () { wait = Math.min(wait * 2, 30); })
      .then(function () { if (!isFinal(status)) setTimeout(poll, wait * 1000); });
  }

  function listen() {
    if (isFinal(status)) return;
    if (!window.EventSource) { poll(); return; }
    var source = new EventSource(base + "/events");
    source.addEventListener("state", function (e) {
      apply(JSON.parse(e.data));
      if (isFinal(status)) source.close();
    });
    source.addEventListener("gone", function () { source.close(); location.reload(); });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) poll();  // the stream was refused: fall back to polling
    };
  }

  var share = $("share");
  if (navigator.share) {
    share.hidden = false;
    share.addEventListener("click", function () {
      var text = { title: data.share_title, text: data.share_text, url: data.page_url };
      var shareLink = function () { navigator.share(text).catch(function () {}); };
      var src = $("photo").src;
      if (!navigator.canShare || !src) { shareLink(); return; }
      fetch(src).then(function (res) { return res.blob(); }).then(function (blob) {
        var ext = (blob.type.split("/")[1] || "jpg").replace("jpeg", "jpg");
        var file = new File([blob], "photo." + ext, { type: blob.type });
        if (navigator.canShare({ files: [file] })) {
          return navigator.share({ files: [file], title: text.title, text: text.text });
        }
        shareLink();
      }).catch(function (err) { if (!err || err.name !== "AbortError") shareLink(); });
    });
  }

  listen();
})();
