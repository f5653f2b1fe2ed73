// Calls the Sample CRM action as Domo's documentation shows (a plain `fetch` to
// /domo/actions/v1/<guid>/process): the browser sends the app's session cookie, and the
// gateway picks the account this user mapped to the alias `deals` in this instance.
// ryuu.js works as well: domo.post(url, body) sends the session in a header instead.
var actionGUID = 'ACTION_GUID';  // the action's guid, given when it is published

function processAction(name) {
    return fetch(`/domo/actions/v1/${actionGUID}/process?accountAlias=deals`, {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({"Opportunity Name": name})
    }).then(response => response.json());
}

document.getElementById("lookup").addEventListener("submit", function (event) {
    event.preventDefault();
    var out = document.getElementById("out");
    processAction(event.target.elements.name.value)
        .then(answer => { out.textContent = JSON.stringify(answer, null, 2); })
        .catch(error => { out.textContent = String(error); });
});
