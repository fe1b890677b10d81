/* "What's bothering you?": suggestions as the person types, from /api/conditions/?q=.
 *
 * An ARIA combobox (the input) with a listbox of suggestions: arrow keys move through them,
 * Enter or a click picks one (its name goes into the field, which the server resolves exactly),
 * Escape closes the list. Without JavaScript the field is a plain text box and the server
 * resolves whatever was typed, listing the candidates when it could mean several.
 */
(function () {
  "use strict";

  var input = document.getElementById("id_condition");
  if (!input || !window.fetch) {
    return;
  }
  var url = input.getAttribute("data-suggest-url");
  var listbox = document.createElement("ul");
  listbox.id = "condition-suggestions";
  listbox.className = "suggestions";
  listbox.setAttribute("role", "listbox");
  listbox.setAttribute("aria-label", "Suggested conditions");
  listbox.hidden = true;
  var status = document.createElement("p");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  input.parentNode.insertBefore(listbox, input.nextSibling);
  input.parentNode.insertBefore(status, listbox.nextSibling);

  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", listbox.id);

  var active = -1;
  var timer = null;
  var pending = null;

  function options() {
    return listbox.querySelectorAll('[role="option"]');
  }

  function close() {
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(index) {
    var all = options();
    if (!all.length) {
      return;
    }
    active = (index + all.length) % all.length;
    all.forEach(function (option, i) {
      option.setAttribute("aria-selected", i === active ? "true" : "false");
    });
    input.setAttribute("aria-activedescendant", all[active].id);
  }

  function pick(option) {
    input.value = option.getAttribute("data-name");
    close();
    status.textContent = option.getAttribute("data-name") + " chosen.";
  }

  function show(results) {
    listbox.textContent = "";
    results.forEach(function (result, i) {
      var option = document.createElement("li");
      option.id = "condition-suggestion-" + i;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.setAttribute("data-name", result.name);
      option.textContent = result.name;
      if (result.matched && result.matched !== result.name) {
        var matched = document.createElement("span");
        matched.className = "suggestion-matched";
        matched.textContent = " (" + result.matched + ")";
        option.appendChild(matched);
      }
      // mousedown, not click: it comes before the input's blur closes the list.
      option.addEventListener("mousedown", function (event) {
        event.preventDefault();
        pick(option);
      });
      listbox.appendChild(option);
    });
    active = -1;
    input.removeAttribute("aria-activedescendant");
    if (results.length) {
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
      status.textContent = results.length + " suggestion" + (results.length === 1 ? "" : "s") +
        ": use the up and down arrows to choose.";
    } else {
      close();
      status.textContent = input.value.trim().length >= 2 ? "No suggestions." : "";
    }
  }

  function lookUp() {
    var text = input.value.trim();
    if (text.length < 2) {
      show([]);
      return;
    }
    if (pending) {
      pending.abort();
    }
    pending = window.AbortController ? new AbortController() : null;
    fetch(url + "?q=" + encodeURIComponent(text), {
      headers: { Accept: "application/json" },
      signal: pending ? pending.signal : undefined,
    })
      .then(function (response) {
        return response.ok ? response.json() : { results: [] };
      })
      .then(function (data) {
        if (input.value.trim() === text) {
          show(data.results || []);
        }
      })
      .catch(function () {
        /* aborted or offline: the field still works as plain text */
      });
  }

  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(lookUp, 150);
  });

  input.addEventListener("keydown", function (event) {
    if (listbox.hidden) {
      if (event.key === "ArrowDown" && input.value.trim().length >= 2) {
        lookUp();
        event.preventDefault();
      }
      return;
    }
    if (event.key === "ArrowDown") {
      highlight(active + 1);
      event.preventDefault();
    } else if (event.key === "ArrowUp") {
      highlight(active - 1);
      event.preventDefault();
    } else if (event.key === "Enter" && active >= 0) {
      pick(options()[active]);
      event.preventDefault();
    } else if (event.key === "Escape") {
      close();
      event.preventDefault();
    }
  });

  input.addEventListener("blur", close);
})();
