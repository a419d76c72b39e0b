/* Live wall: new photos of the event are added at the top as they appear, and taken off when an operator hides
   them or they are erased (Server-Sent Events). */
(function () {
  "use strict";
  var body = document.body;
  var grid = document.getElementById("grid");
  var MAX_ITEMS = 60;
  if (!window.EventSource || !body.dataset.events) return;
  var source = new EventSource(body.dataset.events + "&since=" + encodeURIComponent(body.dataset.since || ""));
  source.addEventListener("photo", function (e) {
    var photo = JSON.parse(e.data);
    var items = grid.children;
    for (var i = 0; i < items.length; i++) if (items[i].dataset.id === photo.id) return;
    var li = document.createElement("li");
    li.dataset.id = photo.id;
    li.className = "arrived";
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
  });
  source.addEventListener("remove", function (e) {
    var id = JSON.parse(e.data).id;
    var items = grid.children;
    for (var i = items.length - 1; i >= 0; i--) if (items[i].dataset.id === id) grid.removeChild(items[i]);
    document.getElementById("empty").hidden = grid.children.length > 0;
  });
})();
