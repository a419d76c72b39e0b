/* Live wall: new photos of the event are added at the top as they complete, and taken off when an operator hides
   them or they are erased (Server-Sent Events); the grid is re-shaped to the number of photos and the screen
   (--cols, --rows), so the photos always fill the wall. */
(function () {
  "use strict";
  var body = document.body;
  var grid = document.getElementById("grid");
  var MAX_ITEMS = Number(body.dataset.max) || 100;

  // The same rule as pages/routes.py wall_shape: the grid that shows a square photo largest, no empty row.
  function layout() {
    var count = Math.max(grid.children.length, 1);
    var width = grid.clientWidth, height = grid.clientHeight;
    if (!width || !height) return;
    var best = -1, cols = 1, rows = 1;
    for (var c = 1; c <= count; c++) {
      var r = Math.ceil(count / c);
      if ((r - 1) * c >= count) continue;
      var side = Math.min(width / c, height / r);
      if (side > best) { best = side; cols = c; rows = r; }
    }
    grid.style.setProperty("--cols", cols);
    grid.style.setProperty("--rows", rows);
  }

  layout();
  window.addEventListener("resize", layout);
  if (!window.EventSource || !body.dataset.events) return;
  var source = new EventSource(body.dataset.events + "&since=" + encodeURIComponent(body.dataset.since || ""));
  source.addEventListener("photo", function (e) {
    var photo = JSON.parse(e.data);
    var items = grid.children;
    for (var i = 0; i < items.length; i++) if (items[i].dataset.id === photo.id) return;
    var li = document.createElement("li");
    li.dataset.id = photo.id;
    li.className = "arrived";
    li.style.setProperty("--photo", "url(\"" + photo.thumb_url + "\")");
    var link = document.createElement("a");
    link.href = photo.page_url;
    var img = document.createElement("img");
    img.alt = body.dataset.alt || "";
    img.decoding = "async";
    img.src = photo.thumb_url;
    link.appendChild(img);
    li.appendChild(link);
    grid.insertBefore(li, grid.firstChild);
    document.getElementById("empty").hidden = true;
    while (grid.children.length > MAX_ITEMS) grid.removeChild(grid.lastElementChild);
    layout();
  });
  source.addEventListener("remove", function (e) {
    var id = JSON.parse(e.data).id;
    var items = grid.children;
    for (var i = items.length - 1; i >= 0; i--) if (items[i].dataset.id === id) grid.removeChild(items[i]);
    document.getElementById("empty").hidden = grid.children.length > 0;
    layout();
  });
})();
