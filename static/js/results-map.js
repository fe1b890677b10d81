/* The results map: one numbered Leaflet marker per result row, at the clinic the row shows.
 *
 * The list is the source of truth and the map's text alternative: every marker is built from a
 * row's data-lat / data-lon / data-number, so the two always agree in number and order. Without
 * JavaScript (or without Leaflet) the map panel simply stays hidden.
 */
(function () {
  "use strict";

  var panel = document.getElementById("results-map-panel");
  var container = document.getElementById("results-map");
  var list = document.querySelector("ol.results");
  if (!panel || !container || !list || typeof window.L === "undefined") {
    return;
  }
  var L = window.L;
  var rows = Array.prototype.slice.call(list.querySelectorAll("li.result[data-lat][data-lon]"));
  if (!rows.length) {
    return;
  }

  var PIN_SIZE = 30;

  panel.hidden = false;
  var layout = panel.closest(".results-layout");
  if (layout) {
    layout.classList.add("has-map");
  }

  var map = L.map(container, {
    scrollWheelZoom: false, // the page scrolls; zoom with the buttons, keyboard or a pinch
    keyboard: true,
  });

  var tiles = L.tileLayer(container.dataset.tileUrl, {
    attribution: container.dataset.tileAttribution,
    maxZoom: 19,
  });
  var tilesLoaded = 0;
  tiles.on("tileload", function () {
    tilesLoaded += 1;
    container.classList.remove("tiles-unavailable");
    document.getElementById("map-tiles-unavailable").hidden = true;
  });
  tiles.on("tileerror", function () {
    // One failed tile among loaded ones is noise; none at all means the tile server is out of
    // reach, and the person should know the blank map is not "no results".
    if (tilesLoaded === 0) {
      container.classList.add("tiles-unavailable");
      document.getElementById("map-tiles-unavailable").hidden = false;
    }
  });
  tiles.addTo(map);

  var entries = rows.map(function (row) {
    return { row: row, latlng: L.latLng(parseFloat(row.dataset.lat), parseFloat(row.dataset.lon)) };
  });

  // Tooltip content as text: names and places come from people, never as markup.
  function textNode(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  function rowName(row) {
    var link = row.querySelector(".result-name a");
    return link ? link.textContent.trim() : "Result " + row.dataset.number;
  }

  var origin = null;
  if (container.dataset.originLat && container.dataset.originLon) {
    origin = L.latLng(parseFloat(container.dataset.originLat), parseFloat(container.dataset.originLon));
    L.circleMarker(origin, {
      radius: 7,
      color: "#ffffff",
      weight: 3,
      fillColor: "#a4161a",
      fillOpacity: 1,
      interactive: false,
    })
      .bindTooltip(textNode("Searched from " + (container.dataset.originLabel || "here")))
      .addTo(map);
  }

  var bounds = L.latLngBounds(
    entries.map(function (entry) {
      return entry.latlng;
    }),
  );
  if (origin) {
    bounds.extend(origin);
  }
  // The view comes first: Leaflet only creates a marker's element once the map has one.
  map.fitBounds(bounds, { padding: [PIN_SIZE * 1.5, PIN_SIZE * 1.5], maxZoom: 15 });

  // Below a regional zoom, pins of different towns merge into one numbered cluster (Seattle,
  // Memphis and Chicago on one "anywhere" page would otherwise be fanned side by side); from
  // CLUSTER_UNTIL_ZOOM on every pin stands alone and spreadPins keeps neighbours apart.
  var CLUSTER_UNTIL_ZOOM = 9;
  var clusters =
    typeof L.markerClusterGroup === "function"
      ? L.markerClusterGroup({
          maxClusterRadius: 56,
          disableClusteringAtZoom: CLUSTER_UNTIL_ZOOM,
          showCoverageOnHover: false,
          spiderfyOnMaxZoom: false,
          iconCreateFunction: function (cluster) {
            var count = cluster.getChildCount();
            var html = document.createElement("span");
            html.className = "map-cluster-count";
            html.textContent = String(count);
            var hidden = document.createElement("span");
            hidden.className = "visually-hidden";
            hidden.textContent = " results here: zoom in to see them";
            var wrapper = document.createElement("span");
            wrapper.appendChild(html);
            wrapper.appendChild(hidden);
            return L.divIcon({
              className: "map-cluster",
              html: wrapper.innerHTML,
              iconSize: [40, 40],
            });
          },
        })
      : null;
  var pinLayer = clusters || map;
  if (clusters) {
    // A cluster is a button like a pin: Enter or Space zooms in on it, as a click does.
    clusters.on("clusterkeypress", function (event) {
      var key = event.originalEvent.key;
      if (key === "Enter" || key === " ") {
        event.originalEvent.preventDefault();
        event.layer.zoomToBounds({ padding: [PIN_SIZE, PIN_SIZE] });
      }
    });
  }

  // A marker's element exists only while it is drawn as itself (not inside a cluster), and is
  // made anew each time: what it says and whether it is the active one are set on every add.
  function decorate(marker, label, number, position) {
    var element = marker.getElement();
    if (!element) {
      return;
    }
    element.setAttribute("role", "button");
    element.setAttribute("aria-label", label);
    element.dataset.number = number;
    element.classList.toggle("is-active", position === active);
  }

  var markers = entries.map(function (entry, position) {
    var row = entry.row;
    var number = row.dataset.number;
    var approximate = row.dataset.approximate === "true";
    var distance = row.querySelector(".distance");
    var label =
      number +
      ". " +
      rowName(row) +
      (distance ? ", " + distance.textContent.trim() : "") +
      (approximate ? " (approximate location)" : "");
    var icon = L.divIcon({
      className: "map-pin" + (approximate ? " map-pin-approximate" : ""),
      html: '<span class="map-pin-number">' + number + "</span>",
      iconSize: [PIN_SIZE, PIN_SIZE],
      iconAnchor: [PIN_SIZE / 2, PIN_SIZE / 2],
      tooltipAnchor: [0, -PIN_SIZE / 2],
    });
    var marker = L.marker(entry.latlng, {
      icon: icon,
      keyboard: true,
      title: label,
      riseOnHover: true,
    })
      .bindTooltip(textNode(number + ". " + rowName(row)), { direction: "top" });
    marker.on("add", function () {
      decorate(marker, label, number, position);
      scheduleSpread();
    });
    marker.on("click", function () {
      activate(position, "map");
    });
    // role="button" promises Enter and Space; Leaflet hands on key presses but acts on none.
    marker.on("keypress", function (event) {
      var key = event.originalEvent.key;
      if (key === "Enter" || key === " ") {
        event.originalEvent.preventDefault();
        activate(position, "map");
      }
    });
    return marker;
  });
  if (clusters) {
    clusters.addLayers(markers);
    map.addLayer(clusters);
  } else {
    markers.forEach(function (marker) {
      marker.addTo(map);
    });
  }

  // A dot at every clinic's true position; it only shows when its pin has been moved aside.
  entries.forEach(function (entry) {
    L.circleMarker(entry.latlng, {
      radius: 3,
      color: "#1b1f24",
      weight: 1,
      fillColor: "#1b1f24",
      fillOpacity: 0.9,
      interactive: false,
    }).addTo(map);
  });

  // Pins that would cover each other at this zoom (always the case for practitioners sharing a
  // building) fan out on a small circle, in screen pixels, around where they are. Each marker
  // keeps the clinic's true position; only its icon is drawn aside. Redone after every zoom.
  var spreadPending = false;
  function scheduleSpread() {
    if (!spreadPending) {
      spreadPending = true;
      window.requestAnimationFrame(function () {
        spreadPending = false;
        spreadPins();
      });
    }
  }

  function spreadPins() {
    // Only the pins drawn as themselves: a clustered one has no element to move.
    var shown = [];
    markers.forEach(function (marker, index) {
      if (marker.getElement()) {
        shown.push(index);
      }
    });
    // The cluster layer adds pins in its own order; the list's order is the reading and Tab
    // order, so the elements are put back in it.
    var elements = shown.map(function (index) {
      return markers[index].getElement();
    });
    var inOrder = elements.every(function (element, k) {
      return k === 0 || elements[k - 1].compareDocumentPosition(element) & Node.DOCUMENT_POSITION_FOLLOWING;
    });
    if (!inOrder) {
      // Moving an element drops its focus; only done when the cluster layer re-added pins.
      elements.forEach(function (element) {
        element.parentNode.appendChild(element);
      });
    }
    var points = shown.map(function (index) {
      return map.latLngToLayerPoint(entries[index].latlng);
    });
    // Start with pins that touch where they stand; a fanned-out circle may then land on a
    // neighbour, so merge the two groups and lay them out again, until nothing touches.
    var groupOf = points.map(function (point, index) {
      return index;
    });
    points.forEach(function (point, index) {
      for (var other = 0; other < index; other += 1) {
        if (points[other].distanceTo(point) < PIN_SIZE) {
          groupOf[index] = groupOf[other];
          break;
        }
      }
    });
    var drawn = [];
    for (var round = 0; round < 8; round += 1) {
      drawn = layOut(points, groupOf);
      var merged = false;
      for (var a = 0; a < drawn.length; a += 1) {
        for (var b = a + 1; b < drawn.length; b += 1) {
          if (groupOf[a] !== groupOf[b] && drawn[a].distanceTo(drawn[b]) < PIN_SIZE) {
            var from = groupOf[b];
            var to = groupOf[a];
            groupOf = groupOf.map(function (group) {
              return group === from ? to : group;
            });
            merged = true;
          }
        }
      }
      if (!merged) {
        break;
      }
    }
    drawn.forEach(function (position, index) {
      var dx = Math.round(position.x - points[index].x);
      var dy = Math.round(position.y - points[index].y);
      var marker = markers[shown[index]];
      var element = marker.getElement();
      element.style.marginLeft = dx - PIN_SIZE / 2 + "px";
      element.style.marginTop = dy - PIN_SIZE / 2 + "px";
      marker.options.icon.options.tooltipAnchor = [dx, dy - PIN_SIZE / 2];
    });
  }

  // Where each pin is drawn: alone at its clinic, or on a circle around its group's centre, in
  // list order clockwise from the top.
  function layOut(points, groupOf) {
    var members = {};
    groupOf.forEach(function (group, index) {
      (members[group] = members[group] || []).push(index);
    });
    var drawn = points.slice();
    Object.keys(members).forEach(function (group) {
      var indexes = members[group];
      var count = indexes.length;
      if (count < 2) {
        return;
      }
      var center = indexes
        .reduce(function (sum, index) {
          return sum.add(points[index]);
        }, L.point(0, 0))
        .divideBy(count);
      var radius = Math.max(PIN_SIZE * 0.8, (PIN_SIZE * 1.15 * count) / (2 * Math.PI));
      indexes.forEach(function (index, slot) {
        var angle = -Math.PI / 2 + (2 * Math.PI * slot) / count;
        drawn[index] = L.point(center.x + radius * Math.cos(angle), center.y + radius * Math.sin(angle));
      });
    });
    return drawn;
  }
  spreadPins();
  map.on("zoomend viewreset", scheduleSpread);
  if (clusters) {
    clusters.on("animationend", scheduleSpread);
  }

  var active = -1;

  function isInViewport(element) {
    var box = element.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight;
  }

  // Leaflet drops a zoom asked for while another zoom is animating, and the cluster layer then
  // waits for ever for a pin that never comes into view: "Show on map" pressed right after a
  // cluster was opened did nothing. A zoom to a clustered pin waits until the map stands still.
  // Both flags are the vendored libraries' own (Leaflet 1.9.4, markercluster 1.5.3), read only.
  function whenStill(callback) {
    if (map._animatingZoom || (clusters && clusters._inZoomAnimation)) {
      window.setTimeout(function () {
        whenStill(callback);
      }, 50);
      return;
    }
    callback();
  }

  function activate(position, source) {
    if (active >= 0) {
      entries[active].row.classList.remove("is-active");
      entries[active].row.removeAttribute("aria-current");
      var previous = markers[active].getElement();
      if (previous) {
        previous.classList.remove("is-active");
      }
      markers[active].setZIndexOffset(0);
    }
    active = position;
    var row = entries[position].row;
    var marker = markers[position];
    row.classList.add("is-active");
    row.setAttribute("aria-current", "true");
    if (marker.getElement()) {
      marker.getElement().classList.add("is-active");
    }
    marker.setZIndexOffset(1000);
    if (source === "map") {
      // Take the person to the row, and keyboard focus with them, so Enter on a pin reads the
      // listing it stands for.
      if (!isInViewport(row)) {
        row.scrollIntoView({ block: "center" });
      }
      var link = row.querySelector(".result-name a");
      if (link) {
        link.focus({ preventScroll: true });
      }
    } else {
      if (source === "button" && !isInViewport(container)) {
        container.scrollIntoView({ block: "center" });
      }
      if (clusters && !marker.getElement()) {
        // Inside a cluster: zoom in until the pin stands alone, then point at it.
        whenStill(function () {
          if (active === position) {
            clusters.zoomToShowLayer(marker, function () {
              marker.openTooltip();
            });
          }
        });
        return;
      }
      if (!map.getBounds().contains(marker.getLatLng())) {
        map.panTo(marker.getLatLng());
      }
      marker.openTooltip();
    }
  }

  entries.forEach(function (entry, position) {
    var row = entry.row;
    // A real button per row: the keyboard way from the list to the map.
    var links = row.querySelector(".result-links");
    if (links) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link-button show-on-map";
      button.textContent = "Show on map";
      // The name starts with the visible words, so "click Show on map" works by voice (WCAG
      // 2.5.3 Label in Name), and goes on to say which listing and pin it is.
      button.setAttribute("aria-label", "Show on map: " + rowName(row) + ", pin " + row.dataset.number);
      button.addEventListener("click", function () {
        activate(position, "button");
      });
      links.appendChild(document.createTextNode(" · "));
      links.appendChild(button);
    }
    // Clicking anywhere else on the row does the same (links keep doing what links do).
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, button")) {
        return;
      }
      activate(position, "row");
    });
  });
})();
