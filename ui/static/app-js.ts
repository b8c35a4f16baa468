// The only script the UI runs, served as /static/app.js (a string, so the single executable
// carries it). Every page works without it; it adds the live parts: the CPU cap beside the
// memory field, the build log as it is written, the runtime log's live tail, the instances'
// state on a service's page, confirmations.
export const APP_JS = String.raw`'use strict';
(function () {
  // Manual Deploy: the CPU cap the memory size buys (memory / 1769 MB of a core)
  document.querySelectorAll('input[data-cpu-output]').forEach(function (input) {
    var out = document.getElementById(input.getAttribute('data-cpu-output'));
    var perCore = Number(input.getAttribute('data-mb-per-core')) || 1769;
    var update = function () {
      var mb = Number(input.value);
      out.textContent = mb > 0 ? ((mb / perCore) * 100).toFixed(1) + ' %' : '—';
    };
    input.addEventListener('input', update);
    update();
  });

  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (ev) {
      if (!window.confirm(form.getAttribute('data-confirm'))) ev.preventDefault();
    });
  });

  // a button that stays disabled until its input holds the expected text (delete: the service's name)
  document.querySelectorAll('button[data-needs-confirm]').forEach(function (button) {
    var input = document.getElementById(button.getAttribute('data-needs-confirm'));
    var expected = input && input.getAttribute('data-confirm-name');
    if (!input || !expected) return;
    var update = function () {
      button.disabled = input.value.trim() !== expected;
    };
    input.addEventListener('input', update);
    update();
  });

  // a service's page: its instances and their state, polled from the API with the session cookie
  var instances = document.getElementById('instances');
  var instancesUrl = instances && instances.getAttribute('data-poll');
  if (instances && instancesUrl && window.fetch) {
    var liveNote = document.getElementById('instances-live');
    var ago = function (iso) {
      var s = Math.floor((Date.now() - Date.parse(iso)) / 1000);
      if (!(s >= 0)) return '—';
      if (s < 5) return 'just now';
      if (s < 60) return s + ' s ago';
      if (s < 3600) return Math.floor(s / 60) + ' min ago';
      if (s < 86400) return Math.floor(s / 3600) + ' h ago';
      return Math.floor(s / 86400) + ' d ago';
    };
    var cell = function (row, text, cls) {
      var td = document.createElement('td');
      if (cls) td.className = cls;
      td.textContent = text;
      row.appendChild(td);
    };
    var drawInstances = function (list) {
      instances.textContent = '';
      if (!list.length) {
        var empty = document.createElement('p');
        empty.className = 'empty';
        empty.textContent = 'No instance is running: the next request starts one.';
        instances.appendChild(empty);
        return;
      }
      var table = document.createElement('table');
      table.className = 'list instances';
      var head = document.createElement('tr');
      [['instance'], ['state'], ['deployment'], ['pid', 'num'], ['in flight', 'num'], ['started']].forEach(function (h) {
        var th = document.createElement('th');
        th.textContent = h[0];
        if (h[1]) th.className = h[1];
        head.appendChild(th);
      });
      var thead = document.createElement('thead');
      thead.appendChild(head);
      table.appendChild(thead);
      var body = document.createElement('tbody');
      list.forEach(function (i) {
        var row = document.createElement('tr');
        row.setAttribute('data-instance', i.id);
        cell(row, i.id, 'mono');
        cell(row, i.frozen ? i.state + ' (frozen)' : i.state, 'state');
        cell(row, i.deploymentId, 'mono small');
        cell(row, String(i.pid), 'num');
        cell(row, String(i.inflight), 'num');
        cell(row, ago(i.startedAt), 'small');
        body.appendChild(row);
      });
      table.appendChild(body);
      instances.appendChild(table);
    };
    var pollInstances = function () {
      if (document.hidden) {
        setTimeout(pollInstances, 2000);
        return;
      }
      fetch(instancesUrl, { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (res) {
          if (res.status === 404) {
            liveNote.textContent = 'the service was deleted';
            return null;
          }
          if (!res.ok) throw new Error('status ' + res.status);
          return res.json();
        })
        .then(function (service) {
          if (!service) return;
          drawInstances(service.instances);
          liveNote.hidden = false;
          liveNote.textContent = 'live';
          setTimeout(pollInstances, 2000);
        })
        .catch(function () {
          liveNote.hidden = false;
          liveNote.textContent = 'reconnecting…';
          setTimeout(pollInstances, 5000);
        });
    };
    pollInstances();
  }

  var deployForm = document.querySelector('form.deploy-form');
  if (deployForm) {
    deployForm.addEventListener('submit', function () {
      var button = document.getElementById('deploy-button');
      // disabled after the submit is under way, so the button's own submission still happens
      setTimeout(function () {
        button.disabled = true;
        button.textContent = 'Deploying…';
      }, 0);
    });
  }

  var nearBottom = function (el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  // Deployment Information: the build log as HTML fragments (ANSI already rendered server-side)
  var buildLog = document.getElementById('build-log');
  if (buildLog && buildLog.getAttribute('data-active') === '1' && window.EventSource) {
    buildLog.scrollTop = buildLog.scrollHeight;
    var es = new EventSource(buildLog.getAttribute('data-stream'));
    // every connection replays the log from its start
    es.addEventListener('open', function () {
      buildLog.innerHTML = '';
    });
    es.addEventListener('html', function (ev) {
      var stick = nearBottom(buildLog);
      buildLog.insertAdjacentHTML('beforeend', JSON.parse(ev.data));
      if (stick) buildLog.scrollTop = buildLog.scrollHeight;
    });
    es.addEventListener('end', function () {
      es.close();
      // the page shows the final state, history and URL
      window.location.reload();
    });
  }

  // Observability: live tail of the runtime log (the API's SSE stream, with the session cookie)
  var view = document.getElementById('log-view');
  var followUrl = view && view.getAttribute('data-follow');
  if (view && followUrl && window.EventSource) {
    var after = Number(view.getAttribute('data-after')) || 0;
    var toggle = document.getElementById('tail-toggle');
    var note = document.getElementById('tail-note');
    var status = document.getElementById('tail-status');
    var source = null;
    var ansi = new RegExp(String.fromCharCode(27) + '(\\[[0-?]*[ -/]*[@-~]|\\][^\\x07]*(\\x07|' + String.fromCharCode(27) + '\\\\)|.)', 'g');
    var setState = function (state, text) {
      status.setAttribute('data-state', state);
      note.textContent = text;
    };
    var addRow = function (e) {
      if (e.id <= after) return;
      after = e.id;
      var empty = document.getElementById('log-empty');
      if (empty) empty.remove();
      var stick = nearBottom(view);
      var row = document.createElement('div');
      row.className = 'logline ' + e.stream + ' fresh';
      row.setAttribute('data-id', String(e.id));
      var parts = [
        ['time', e.time.replace('T', ' ').replace(/\.\d+Z$/, '').slice(5)],
        ['stream', e.stream === 'event' ? e.event : e.stream],
        ['inst', e.instanceId || ''],
        ['msg', String(e.message).replace(ansi, '')],
      ];
      parts.forEach(function (p) {
        var el = document.createElement(p[0] === 'time' ? 'time' : 'span');
        if (p[0] !== 'time') el.className = p[0];
        el.textContent = p[1];
        row.appendChild(el);
      });
      view.appendChild(row);
      while (view.children.length > 2000) view.removeChild(view.firstElementChild);
      if (stick) view.scrollTop = view.scrollHeight;
    };
    var start = function () {
      source = new EventSource(followUrl);
      setState('connecting', 'connecting…');
      source.addEventListener('open', function () {
        setState('on', 'live');
      });
      source.addEventListener('log', function (ev) {
        addRow(JSON.parse(ev.data));
      });
      source.addEventListener('error', function () {
        setState('connecting', 'reconnecting…');
      });
      toggle.textContent = 'Pause live tail';
    };
    var stop = function () {
      source.close();
      source = null;
      setState('off', 'paused');
      toggle.textContent = 'Resume live tail';
    };
    toggle.hidden = false;
    toggle.addEventListener('click', function () {
      if (source) stop();
      else start();
    });
    view.scrollTop = view.scrollHeight;
    start();
  }
})();
`;
