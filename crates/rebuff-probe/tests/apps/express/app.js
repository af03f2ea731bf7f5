// Widgets, as an Express user writes them: a bearer token, CRUD, Express's defaults
// (express.json(), the default error handler, no 405s).
//
// `rebuff probe`'s tests start it on loopback (`node app.js PORT`) and check the probe's
// verdict against expected.txt. Nothing here is tuned for the probe.
'use strict';

const express = require('express');

const TOKEN = 'ek_test_3b8e1f0a6c2d';
const app = express();
app.use(express.json());

const widgets = new Map([['w_5f2a9c', { id: 'w_5f2a9c', name: 'sprocket', size: 3 }]]);

const openapi = {
  openapi: '3.1.0',
  info: { title: 'widgets', version: '1' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      NewWidget: {
        type: 'object',
        required: ['name', 'size'],
        properties: { name: { type: 'string' }, size: { type: 'integer' } },
      },
    },
  },
  security: [{ bearer: [] }],
  paths: {
    '/api/widgets': {
      get: { responses: { 200: { description: 'The widgets.' } } },
      post: {
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/NewWidget' } } },
        },
        responses: { 201: { description: 'Created.' } },
      },
    },
    '/api/widgets/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      get: { responses: { 200: { description: 'The widget.' } } },
      delete: { responses: { 204: { description: 'Deleted.' } } },
    },
  },
};

app.get('/openapi.json', (req, res) => res.json(openapi));

function auth(req, res, next) {
  const header = req.get('authorization') || '';
  if (!header.startsWith('Bearer ')) {
    return res.status(401).json({ error: 'missing bearer token' });
  }
  if (header.slice(7) !== TOKEN) {
    return res.status(401).json({ error: 'invalid token' });
  }
  next();
}

app.get('/api/widgets', auth, (req, res) => res.json({ data: [...widgets.values()] }));

app.post('/api/widgets', auth, (req, res) => {
  const { name, size } = req.body;
  if (typeof name !== 'string' || !Number.isInteger(size)) {
    return res.status(400).json({ error: 'name must be a string and size an integer' });
  }
  const widget = { id: `w_${Math.random().toString(16).slice(2, 8)}`, name, size };
  widgets.set(widget.id, widget);
  res.status(201).json(widget);
});

app.get('/api/widgets/:id', auth, (req, res) => {
  const widget = widgets.get(req.params.id);
  if (!widget) {
    return res.status(404).json({ error: 'widget not found' });
  }
  res.json(widget);
});

app.delete('/api/widgets/:id', auth, (req, res) => {
  if (!widgets.delete(req.params.id)) {
    return res.status(404).json({ error: 'widget not found' });
  }
  res.status(204).end();
});

const port = Number(process.argv[2] || 3000);
app.listen(port, '127.0.0.1', () => console.log(`widgets on http://127.0.0.1:${port}`));
