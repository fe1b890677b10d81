/* The profile's map: one pin per clinic that has coordinates, the view fitted to them.
 *
 * The addresses in the list say everything the map shows; without JavaScript (or Leaflet) the
 * panel stays hidden. Names and addresses come from people, so they are set as text.
 */
(function () {
  "use strict";

  var panel = document.getElementById("profile-map-panel");
  var container = document.getElementById("profile-map");
  if (!panel || !container || typeof window.L === "undefined") {
    return;
  }
  var L = window.L;
  var clinics = Array.prototype.slice.call(document.querySelectorAll("li.location[data-lat][data-lon]"));
  if (!clinics.length) {
    return;
  }
  var PIN_SIZE = 30;
  panel.hidden = false;

  var map = L.map(container, { scrollWheelZoom: false, keyboard: true });
  var tiles = L.tileLayer(container.dataset.tileUrl, {
    attribution: container.dataset.tileAttribution,
    maxZoom: 19,
  });
  var tilesLoaded = 0;
  var unavailable = document.getElementById("map-tiles-unavailable");
  tiles.on("tileload", function () {
    tilesLoaded += 1;
    container.classList.remove("tiles-unavailable");
    unavailable.hidden = true;
  });
  tiles.on("tileerror", function () {
    if (tilesLoaded === 0) {
      container.classList.add("tiles-unavailable");
      unavailable.hidden = false;
    }
  });
  tiles.addTo(map);

  function describe(clinic) {
    var name = clinic.querySelector(".clinic-name");
    var address = clinic.querySelector("address");
    var parts = [];
    if (name) {
      parts.push(name.textContent.trim());
    }
    if (address) {
      parts.push(address.textContent.replace(/\s+/g, " ").trim());
    }
    if (clinic.dataset.approximate === "true") {
      parts.push("(approximate location)");
    }
    return parts.join(", ");
  }

  var points = clinics.map(function (clinic) {
    return L.latLng(parseFloat(clinic.dataset.lat), parseFloat(clinic.dataset.lon));
  });
  map.fitBounds(L.latLngBounds(points), { padding: [PIN_SIZE * 1.5, PIN_SIZE * 1.5], maxZoom: 15 });

  clinics.forEach(function (clinic, index) {
    var number = clinic.dataset.number;
    var label = (clinics.length > 1 ? number + ". " : "") + describe(clinic);
    var approximate = clinic.dataset.approximate === "true";
    var icon = L.divIcon({
      className: "map-pin" + (approximate ? " map-pin-approximate" : ""),
      html: '<span class="map-pin-number">' + (clinics.length > 1 ? number : "") + "</span>",
      iconSize: [PIN_SIZE, PIN_SIZE],
      iconAnchor: [PIN_SIZE / 2, PIN_SIZE / 2],
      tooltipAnchor: [0, -PIN_SIZE / 2],
    });
    var tooltip = document.createElement("span");
    tooltip.textContent = label;
    var marker = L.marker(points[index], { icon: icon, keyboard: false, title: label })
      .bindTooltip(tooltip, { direction: "top" })
      .addTo(map);
    // The pins repeat the list; they are pictures of it, not controls of their own.
    var element = marker.getElement();
    element.setAttribute("role", "img");
    element.setAttribute("aria-label", label);
    element.dataset.number = number;
  });
})();
