// Address book and compose enhancements. Without this file the address book is
// a plain search form and the compose page's marking banner updates on the
// "Check your message" page; with it, the list filters as you type and the
// banner follows the marking chosen.

const RANK = { OFFICIAL: 0, "OFFICIAL-SENSITIVE": 1 };

// <input data-gcx-filter> inside a page with [data-gcx-item] elements, each with
// data-gcx-search text: hide what does not match every typed word.
export function filterAsYouType() {
  const input = document.querySelector("input[data-gcx-filter]");
  const list = document.getElementById("address-book");
  const count = document.getElementById("address-book-count");
  if (!input || !list || input.dataset.gcxFiltering) return;
  input.dataset.gcxFiltering = "on";
  const apply = () => {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    const matches = (el) => words.every((w) => el.dataset.gcxSearch.includes(w));
    let shown = 0;
    for (const org of list.querySelectorAll("section[data-gcx-item]")) {
      const whole = matches(org);
      let any = false;
      for (const item of org.querySelectorAll("li[data-gcx-item]")) {
        const show = whole || matches(item);
        item.hidden = !show;
        any = any || show;
      }
      org.hidden = !any;
      if (any) shown += 1;
    }
    if (count) {
      count.textContent = words.length
        ? `${shown} ${shown === 1 ? "organisation matches" : "organisations match"}.`
        : "";
    }
  };
  input.addEventListener("input", apply);
}

// A compose form with data-gcx-marking-floor: the page's marking banners show the
// highest of that floor and the marking chosen, as the person chooses it.
export function liveMarking() {
  const form = document.querySelector("form[data-gcx-marking-floor]");
  if (!form || form.dataset.gcxLiveMarking) return;
  form.dataset.gcxLiveMarking = "on";
  const floor = form.dataset.gcxMarkingFloor;
  const update = () => {
    const chosen = form.querySelector("input[name=marking]:checked");
    let marking = floor;
    if (chosen && chosen.value in RANK && RANK[chosen.value] > RANK[marking]) {
      marking = chosen.value;
    }
    for (const banner of document.querySelectorAll(".gcx-marking")) {
      const old = banner.dataset.marking;
      if (old === marking) continue;
      banner.classList.remove(`gcx-marking--${old.toLowerCase()}`);
      banner.classList.add(`gcx-marking--${marking.toLowerCase()}`);
      banner.dataset.marking = marking;
      const text = banner.querySelector(".gcx-marking__text");
      if (text && text.lastChild) text.lastChild.textContent = marking;
    }
  };
  form.addEventListener("change", update);
  update();
}
