import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { createBackend } from './lib/backend';
import { Fleet } from './lib/fleet.svelte';

const backend = await createBackend();
const fleet = new Fleet(backend);
mount(App, { target: document.getElementById('app')!, props: { fleet } });
void fleet.start();
