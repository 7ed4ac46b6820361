import './harness.js';
import t from 'tap';
import { ipj } from './harness.js';
import { native } from '../src/native.js';

t.test('runs in a private netns', async (t) => {
  const links = ipj('link', 'show');
  t.same(links.map((l: any) => l.ifname), ['lo']);
  const { fd, portId } = native.nlOpen(0);
  t.ok(portId > 0);
  native.close(fd);
});
